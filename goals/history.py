"""Progress history: a snapshot per goal and key result when a sync sees it change.

`record_snapshots` runs inside each employee's store transaction, after the rows were
upserted, so a snapshot never describes a list that was rolled back. It compares each item
with its own latest snapshot (not with the row as it was), so the first sync after an upgrade
gives every item a baseline and an unchanged item never gets a second row. `prune` applies the
retention setting and keeps each item's latest row.
"""

import datetime
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db.models import Exists, Max, OuterRef

from goals.models import Goal, KeyResult, ProgressSnapshot

# The values whose change makes a new snapshot.
COMPARED = ("progress", "current", "target", "status", "deadline")


def _values(item: Goal | KeyResult) -> dict[str, object]:
    return {
        "progress": item.progress,
        "current": item.metric_current,
        "target": item.metric_target,
        "status": item.status,
        "deadline": item.deadline,
    }


def _latest(field: str, ids: Sequence[int]) -> dict[int, ProgressSnapshot]:
    """{goal or key result id: its latest snapshot}, in two queries whatever the count."""
    if not ids:
        return {}
    newest = (
        ProgressSnapshot.objects.filter(**{f"{field}__in": ids})
        .values(field)
        .annotate(newest=Max("id"))
        .values_list("newest", flat=True)
    )
    return {
        getattr(s, f"{field}_id"): s for s in ProgressSnapshot.objects.filter(id__in=list(newest))
    }


def record_snapshots(
    goals: Iterable[Goal], key_results: Iterable[KeyResult], now: datetime.datetime
) -> int:
    """Add a snapshot for each item whose compared values differ from its latest one (or that
    has none). Returns the number of rows written."""
    new = []
    for field, items in (("goal", list(goals)), ("key_result", list(key_results))):
        latest = _latest(field, [i.pk for i in items])
        for item in items:
            values = _values(item)
            last = latest.get(item.pk)
            if last is not None and all(getattr(last, k) == v for k, v in values.items()):
                continue
            new.append(ProgressSnapshot(**{field: item}, taken_at=now, **values))
    ProgressSnapshot.objects.bulk_create(new, batch_size=500)
    return len(new)


def prune(now: datetime.datetime, retention_days: int | None = None) -> int:
    """Delete snapshots older than the retention (days, `GOALS_HISTORY_RETENTION_DAYS` by
    default) that have a later snapshot (higher id) of the same item. Returns the rows deleted."""
    days = settings.GOALS_HISTORY_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = now - datetime.timedelta(days=days)
    deleted = 0
    for field in ("goal", "key_result"):
        newer = ProgressSnapshot.objects.filter(**{field: OuterRef(field)}, id__gt=OuterRef("id"))
        old = ProgressSnapshot.objects.filter(
            **{f"{field}__isnull": False}, taken_at__lt=cutoff
        ).filter(Exists(newer))
        deleted += old.delete()[0]
    return deleted
