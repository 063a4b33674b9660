"""django-q2 schedules are data: each app (re)creates its own after every migrate, by name,
so running the set-up any number of times leaves exactly one row per schedule.

The schedules pilotsite owns are all named "pilotsite: …" (`OWNED_PREFIX`); the admin shows
them read-only and refuses that prefix for anything else. The job functions apps register
(`register_job`, from their `AppConfig.ready()`) are the only functions the admin lets
anyone schedule or resubmit: django-q2 runs whatever dotted path a schedule names, so a
free-text function would be a way to run any code on the server.

A job is always named by its function object; `job_path` turns it into the dotted path
django-q2 stores (`Schedule.func`, `Task.func`), computed in this one place.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

OWNED_PREFIX = "pilotsite: "

# dotted path → the job function it runs; former paths (an earlier release's, still named by
# queued tasks and schedules) map to the function that replaced them.
_jobs: dict[str, Callable[..., Any]] = {}
_former: dict[str, Callable[..., Any]] = {}


def job_path(fn: Callable[..., Any]) -> str:
    """The dotted path django-q2 stores for `fn` ("package.module.function")."""
    return f"{fn.__module__}.{fn.__qualname__}"


def register_job(fn: Callable[..., Any], *, former_paths: tuple[str, ...] = ()) -> None:
    """Allow `fn` to be scheduled and resubmitted from the admin. `former_paths` are the dotted
    paths it had in an earlier release: tasks queued under them may be resubmitted, and
    `repoint_former_paths` moves schedules naming them to `fn`."""
    _jobs[job_path(fn)] = fn
    for path in former_paths:
        _former[path] = fn


def job_functions() -> list[str]:
    """The dotted paths of every registered job function, sorted."""
    return sorted(_jobs)


def is_job_function(path: str) -> bool:
    """Whether `path` names a registered job function, now or in an earlier release."""
    return path in _jobs or path in _former


def is_owned(name: str) -> bool:
    """Whether a schedule of this name is one pilotsite creates (and recreates) itself."""
    return (name or "").startswith(OWNED_PREFIX)


def _schedules_table_exists(using: str) -> bool:
    from django_q.models import Schedule

    return Schedule._meta.db_table in connections[using].introspection.table_names()


def ensure_schedule(
    name: str,
    func: Callable[..., Any],
    minutes: int,
    using: str = DEFAULT_DB_ALIAS,
    *,
    former_names: tuple[str, ...] = (),
) -> None:
    """Create or update the schedule `name` (which must start with OWNED_PREFIX) to run the
    registered job `func` every `minutes`; rows under `former_names` (an earlier release's)
    are folded into it. Raises ValueError for another name or an unregistered function."""
    from django_q.models import Schedule

    path = job_path(func)
    if not is_owned(name) or path not in _jobs:
        raise ValueError(
            f"{name!r} → {path!r}: owned schedules are named {OWNED_PREFIX!r}… and run a "
            "registered job function"
        )
    if not _schedules_table_exists(using):
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
                "func": path,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )


def repoint_former_paths(using: str = DEFAULT_DB_ALIAS, **_: object) -> int:
    """Point every schedule that names a job's former dotted path (one made by hand in the
    admin, say) at the job's current path; returns how many were changed. Safe to run any
    number of times (post_migrate runs it)."""
    from django_q.models import Schedule

    if not _former or not _schedules_table_exists(using):
        return 0
    changed = 0
    schedules = Schedule.objects.using(using)
    for path, fn in _former.items():
        changed += schedules.filter(func=path).update(func=job_path(fn))
    return changed


def send_on_commit(func: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> None:
    """Hand a job to django-q2 (`async_task(func, *args, **kwargs)`) once the current
    transaction commits, or at once outside one: a worker then never starts on rows it
    cannot see yet, and a transaction rolled back queues nothing. An error of the broker
    is raised from the commit (Django's `on_commit`, not robust), after the data is saved."""
    from django_q.tasks import async_task

    transaction.on_commit(partial(async_task, func, *args, **kwargs))
