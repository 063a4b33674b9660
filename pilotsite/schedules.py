"""django-q2 schedules are data: each app (re)creates its own after every migrate, by name,
so running the set-up any number of times leaves exactly one row per schedule.

The schedules pilotsite owns are all named "pilotsite: …" (`OWNED_PREFIX`); the admin shows
them read-only and refuses that prefix for anything else. `JOB_FUNCTIONS` are the only
functions the admin lets anyone schedule or resubmit: django-q2 runs whatever dotted path a
schedule names, so a free-text function would be a way to run any code on the server.
"""

from django.db import DEFAULT_DB_ALIAS, connections, transaction

OWNED_PREFIX = "pilotsite: "
JOB_FUNCTIONS = (
    "integrations.pipeline.jobs.poll_all",
    "integrations.pipeline.jobs.run_claimed_job",
    "integrations.webhooks.jobs.check_all_webhooks",
    "integrations.webhooks.registration.handle_delivery",
    "goals.jobs.sync_all_due",
    "goals.jobs.sync_connection",
)


def is_owned(name: str) -> bool:
    """Whether a schedule of this name is one pilotsite creates (and recreates) itself."""
    return (name or "").startswith(OWNED_PREFIX)


def ensure_schedule(
    name: str,
    func: str,
    minutes: int,
    using: str = DEFAULT_DB_ALIAS,
    *,
    former_names: tuple[str, ...] = (),
) -> None:
    """Create or update the schedule `name` (which must start with OWNED_PREFIX) to run `func`
    every `minutes`; rows under `former_names` (an earlier release's) are folded into it."""
    from django_q.models import Schedule

    if not is_owned(name) or func not in JOB_FUNCTIONS:
        raise ValueError(f"{name!r} → {func!r}: owned schedules are named {OWNED_PREFIX!r}…")
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated (yet) on this database
    schedules = Schedule.objects.using(using)
    with transaction.atomic(using=using):
        # A row duplicated by hand (or by an older release) is folded back into one.
        for extra in list(schedules.filter(name__in=(name, *former_names)).order_by("pk"))[1:]:
            extra.delete()
        schedules.filter(name__in=former_names).update(name=name)
        schedules.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
