"""django-q2 schedules are data: each app (re)creates its own after every migrate, by name,
so running the set-up any number of times leaves exactly one row per schedule."""

from django.db import DEFAULT_DB_ALIAS, connections, transaction


def ensure_schedule(name: str, func: str, minutes: int, using: str = DEFAULT_DB_ALIAS) -> None:
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated (yet) on this database
    schedules = Schedule.objects.using(using)
    with transaction.atomic(using=using):
        # A row duplicated by hand (or by an older release) is folded back into one.
        for extra in list(schedules.filter(name=name).order_by("pk"))[1:]:
            extra.delete()
        schedules.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
