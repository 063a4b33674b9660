"""The workspace's pilot and status tags, and the one rule that says whether a task may run.

Asana does not make tag names unique: `POST /workspaces/{workspace_gid}/tags` makes a new
tag whatever its name (the spec's TagCompact.name requires no uniqueness), so two people can
each create `pilot`. So:

- every tag whose name equals the connection's pilot tag exactly (case-sensitive) is a pilot
  tag: polling lists the tasks of each, and a task carrying any of them is tagged;
- the status tags (`pilot-in-progress`, `pilot-done`, `pilot-failed`, `pilot-stop`,
  `pilot-awaiting-approval`, `pilot-needs-input`) are found by exact name too; any tag of
  that name counts when deciding eligibility, and pilotsite writes the oldest one (by
  `created_at`, then GID), so every process picks the same tag;
- a status tag is created only when no tag of that name exists, through `create_once`, and
  only those the connection's rollout mode writes (`created_names`): none in shadow mode,
  the approval tags only in approval mode.

The tag list is cached on the connection (`tag_gids`) and listed again after `TAG_REFRESH`,
or at once when a task in the workspace carries a tag of one of these names that the cache
does not know. Both intake paths (poll and webhook) and the runner decide with
`ineligible_reason`, by tag GIDs known for the connection's own workspace, so a task in
another workspace is never handled by this connection.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from integrations import audit
from integrations.asana.client import AsanaClient
from integrations.asana.creates import create_once
from integrations.asana.errors import AsanaError
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog
from integrations.pipeline.convert import APPROVED_TAG, AWAITING_TAG, STATUS_TAGS, WAIT_TAGS

Mode = AsanaConnection.RolloutMode

# How long the workspace's tag list is trusted before it is listed again (a new duplicate
# of the pilot tag is watched from then on).
TAG_REFRESH = timedelta(minutes=10)


class PilotTagMissing(AsanaError):
    """The workspace has no tag with the connection's pilot tag name (permanent until fixed)."""


@dataclass(frozen=True)
class WorkspaceTags:
    """The tags of one workspace that pilotsite cares about.

    `by_name` maps each wanted name to the GIDs of every tag with exactly that name, oldest
    first. `tags[name]` is the GID pilotsite writes for a status tag (the oldest).
    """

    workspace_gid: str
    pilot_tag: str
    by_name: dict[str, tuple[str, ...]]
    listed_at: datetime

    def __getitem__(self, name: str) -> str:
        return self.by_name[name][0]

    @property
    def pilot_gids(self) -> tuple[str, ...]:
        return self.by_name.get(self.pilot_tag, ())

    @property
    def duplicates(self) -> dict[str, int]:
        """Names carried by more than one tag, with how many."""
        return {name: len(gids) for name, gids in self.by_name.items() if len(gids) > 1}

    def knows(self, gid: str) -> bool:
        return any(gid in gids for gids in self.by_name.values())

    def to_cache(self) -> dict[str, Any]:
        return {
            "listed_at": self.listed_at.isoformat(),
            "tags": {name: list(gids) for name, gids in self.by_name.items()},
        }

    @classmethod
    def from_cache(cls, connection: AsanaConnection) -> "WorkspaceTags | None":
        """The cached tags, or None when there are none (or in a shape from before)."""
        cached = connection.tag_gids or {}
        try:
            listed_at = datetime.fromisoformat(cached["listed_at"])
            by_name = {str(n): tuple(str(g) for g in gids) for n, gids in cached["tags"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return cls(connection.workspace_gid, connection.pilot_tag, by_name, listed_at)


def wanted_names(connection: AsanaConnection) -> tuple[str, ...]:
    return (connection.pilot_tag, *STATUS_TAGS, APPROVED_TAG)


def created_names(connection: AsanaConnection) -> tuple[str, ...]:
    """The status tags pilotsite creates when the workspace has none of that name: none in
    shadow mode (nothing is written to Asana), the approval tags only in approval mode (so
    people find `pilot-approved` when they type it)."""
    mode = connection.rollout_mode
    if mode == Mode.SHADOW:
        return ()
    plain = tuple(name for name in STATUS_TAGS if name != AWAITING_TAG)
    return (*plain, AWAITING_TAG, APPROVED_TAG) if mode == Mode.APPROVAL else plain


def resolve_tags(
    connection: AsanaConnection, client: AsanaClient, *, refresh: bool = False
) -> WorkspaceTags:
    """The connection's tags: cached, or listed (and missing status tags created).

    Raises PilotTagMissing when no tag has the pilot tag's name, and AsanaError when Asana
    fails. `refresh` lists the tags again whatever the cache's age.
    """
    cached = WorkspaceTags.from_cache(connection)
    if (
        cached is not None
        and not refresh
        and timezone.now() - cached.listed_at < TAG_REFRESH
        and all(cached.by_name.get(n) for n in (connection.pilot_tag, *created_names(connection)))
    ):
        return cached
    now = timezone.now()
    by_name = _list_tags(connection, client)
    if not by_name.get(connection.pilot_tag):
        raise PilotTagMissing(
            f"pilot tag {connection.pilot_tag!r} not found in the workspace (tag names are "
            "case-sensitive): create it in Asana or change the connection's pilot tag"
        )
    for name in created_names(connection):
        if not by_name.get(name):
            by_name[name] = (_create_tag(connection, client, name),)
    tags = WorkspaceTags(connection.workspace_gid, connection.pilot_tag, by_name, now)
    AsanaConnection.objects.filter(pk=connection.pk).update(tag_gids=tags.to_cache())
    connection.tag_gids = tags.to_cache()
    return tags


def forget_tags(connection: AsanaConnection) -> None:
    """Drop the cache (a cached tag was deleted): the next use lists the tags again."""
    AsanaConnection.objects.filter(pk=connection.pk).update(tag_gids={})
    connection.tag_gids = {}


def _list_tags(connection: AsanaConnection, client: AsanaClient) -> dict[str, tuple[str, ...]]:
    wanted = wanted_names(connection)
    found: dict[str, list[tuple[str, str]]] = {}
    for tag in client.workspace_tags(connection.workspace_gid):
        name = tag.get("name")
        if name in wanted:
            found.setdefault(name, []).append((str(tag.get("created_at") or ""), str(tag["gid"])))
    return {
        name: tuple(gid for _, gid in sorted(tags, key=lambda t: (t[0], int(t[1]))))
        for name, tags in found.items()
    }


def _create_tag(connection: AsanaConnection, client: AsanaClient, name: str) -> str:
    target = f"tag {name!r} in workspace {connection.workspace_gid}"
    try:
        tag = create_once(
            lambda: client.create_tag(connection.workspace_gid, name),
            lambda: _oldest(_list_tags(connection, client).get(name, ())),
            what=f"create {target}",
        )
    except AsanaError as exc:
        _audit_create(connection, target, AuditLog.Outcome.ERROR, str(exc))
        raise
    gid = str(tag["gid"])
    _audit_create(connection, target, AuditLog.Outcome.OK, f"gid {gid}")
    return gid


def _oldest(gids: tuple[str, ...]) -> dict[str, str] | None:
    return {"gid": gids[0]} if gids else None


def _audit_create(connection: AsanaConnection, target: str, outcome: str, detail: str) -> None:
    audit.record(
        Action.ASANA_CREATE_TAG,
        target=target,
        outcome=outcome,
        detail=detail,
        actor_label="poller",
        connection=connection,
    )


# -- eligibility ---------------------------------------------------------------------------


def _carried(task: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("gid")): str(t.get("name") or "") for t in task.get("tags") or []}


def _workspace_of(task: dict[str, Any]) -> str:
    return str((task.get("workspace") or {}).get("gid") or "")


def ineligible_reason(
    task: dict[str, Any], tags: WorkspaceTags, *, resuming: bool = False
) -> str | None:
    """Why a task may not be dispatched now, or None when it may: the one rule for polling,
    webhooks and the runner.

    `task` is read with `workspace`, `completed` and `tags.name` (both `LIST_FIELDS` and
    `DETAIL_FIELDS` have them). Eligible means: in the connection's own workspace, not
    completed, carrying one of the workspace's pilot tags (by GID, among every tag of that
    name) and no status tag (by GID or exact name). A task `resuming` after a wait on a
    person (its ledger row was approved, or a reply claimed it back) may still carry the
    wait's tag (`WAIT_TAGS`: `pilot-awaiting-approval`, `pilot-needs-input`) until its run
    has started: those are allowed.
    """
    workspace = _workspace_of(task)
    if workspace != tags.workspace_gid:
        return f"in another workspace ({workspace or 'unknown'})"
    if task.get("completed"):
        return "completed"
    carried = _carried(task)
    if not set(carried) & set(tags.pilot_gids):
        return f"no longer tagged {tags.pilot_tag!r}"
    # A status tag counts by its exact name too: the task is in this workspace, so any tag it
    # carries is one of this workspace's (even one this user cannot list).
    status = [
        name
        for name in STATUS_TAGS
        if (set(carried) & set(tags.by_name.get(name, ())) or name in carried.values())
        and not (resuming and name in WAIT_TAGS)
    ]
    if status:
        return f"carries {', '.join(status)}"
    return None


def carries_unknown_tag(task: dict[str, Any], tags: WorkspaceTags) -> bool:
    """A task of this workspace carries a pilot or status tag name whose GID is not cached
    (someone just made a duplicate): the tags must be listed again before deciding."""
    if _workspace_of(task) != tags.workspace_gid:
        return False
    wanted = (tags.pilot_tag, *STATUS_TAGS)
    return any(name in wanted and not tags.knows(gid) for gid, name in _carried(task).items())


def eligibility(
    connection: AsanaConnection,
    client: AsanaClient,
    task: dict[str, Any],
    *,
    resuming: bool = False,
) -> tuple[WorkspaceTags, str | None]:
    """The tags (listed again if the task shows a new duplicate) and `ineligible_reason`."""
    tags = resolve_tags(connection, client)
    if carries_unknown_tag(task, tags):
        tags = resolve_tags(connection, client, refresh=True)
    return tags, ineligible_reason(task, tags, resuming=resuming)


def duplicate_tags_text(connection: AsanaConnection) -> str:
    """What the card and `asana status` say about duplicate tag names ("" when none), from
    the cache: no Asana call."""
    tags = WorkspaceTags.from_cache(connection)
    if tags is None or not tags.duplicates:
        return ""
    parts = []
    for name, count in tags.duplicates.items():
        if name == tags.pilot_tag:
            parts.append(f"{count} tags named {name!r} (tasks carrying any of them are taken)")
        else:
            parts.append(f"{count} tags named {name!r} (pilotsite adds the oldest, {tags[name]})")
    return (
        "duplicate tag names in this workspace: "
        + "; ".join(parts)
        + ". Merge or rename them in Asana to avoid confusion."
    )
