"""Benchmark: progress history growth and the goals tab's server time.

1. Snapshot rows and bytes per month for GOALS goals synced daily for 30 days: each day every
   goal goes through the same comparison as a sync (goals.history.record_snapshots); a share
   of them changed that day (`--change-rates`, default 0 %, 1/7 — a weekly update — and
   100 %). Bytes are the snapshot table's and its indexes' pages (SQLite's dbstat).
2. The goals tab for a manager of 50 employees with 500 goals (a month of weekly history each):
   database queries and server time per page view (Django's test client, the whole request).

Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/goals_insight_bench.py [--goals 5000] [--views 20]
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_django(database: Path) -> None:
    # A throwaway database of its own, so the benchmark never touches the real one.
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["PILOT_ENV_FILE"] = ""
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("DEBUG", "off")
    os.environ["SECURE_SSL_REDIRECT"] = "off"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotsite.settings")
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings

    # No collectstatic here: plain static storage, as the test suite uses.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)


def _table_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = 'goals_progresssnapshot' "
            "OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'goals_progresssnapshot')"
        )
        return int(cursor.fetchone()[0] or 0)


def _team(goals: int, employees: int, manager=None):
    from goals.models import Goal
    from integrations.models import AsanaConnection, Employee

    connection = AsanaConnection.objects.create(workspace_gid=str(random.randint(1, 10**9)))
    people = Employee.objects.bulk_create(
        Employee(name=f"E{i}", email=f"e{i}.{connection.pk}@example.com", manager=manager)
        for i in range(employees)
    )
    due = datetime.date.today() + datetime.timedelta(days=60)
    Goal.objects.bulk_create(
        (
            Goal(
                employee=people[i % employees],
                connection=connection,
                asana_gid=str(i),
                name=f"Goal {i}",
                due_on=due,
                has_metric=True,
                metric_initial=0,
                metric_target=100,
                metric_current=0,
                progress=0.0,
                status="green",
            )
            for i in range(goals)
        ),
        batch_size=1000,
    )
    return connection, people


def history_growth(goals: int, rate: float) -> tuple[int, int, float]:
    """(rows, bytes, seconds per daily pass) after 30 daily passes at this change rate."""
    from goals import history
    from goals.models import Goal, ProgressSnapshot

    ProgressSnapshot.objects.all().delete()
    Goal.objects.all().delete()
    connection, _ = _team(goals, max(1, goals // 10))
    items = list(Goal.objects.filter(connection=connection))
    start = datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC)
    history.record_snapshots(items, [], start)  # the baseline, before the month starts
    baseline = ProgressSnapshot.objects.count()
    passes = []
    rng = random.Random(1)
    for day in range(1, 31):
        for goal in items:
            if rng.random() < rate:
                assert goal.metric_current is not None  # every bench goal has a metric
                goal.metric_current += 1
                goal.progress = goal.metric_current / 100
        began = time.perf_counter()
        history.record_snapshots(items, [], start + datetime.timedelta(days=day))
        passes.append(time.perf_counter() - began)
    rows = ProgressSnapshot.objects.count() - baseline
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("VACUUM")
    per_row = _table_bytes() / max(1, ProgressSnapshot.objects.count())
    return rows, int(rows * per_row), statistics.median(passes)


def tab_views(views: int) -> tuple[int, float, float]:
    """(queries, median ms, p90 ms) of the goals tab for a manager of 50 with 500 goals."""
    from django.contrib.auth.models import Group, User
    from django.db import connection as db
    from django.test import Client

    from goals.models import Goal, KeyResult, ProgressSnapshot

    manager = User.objects.create_user("manager", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    connection, people = _team(500, 50, manager)
    from goals.models import EmployeeGoalState

    now = datetime.datetime.now(datetime.UTC)
    EmployeeGoalState.objects.bulk_create(
        EmployeeGoalState(employee=p, connection=connection, last_synced_at=now) for p in people
    )
    goals = list(Goal.objects.filter(connection=connection))
    ProgressSnapshot.objects.bulk_create(
        ProgressSnapshot(
            goal=g, taken_at=now - datetime.timedelta(days=7 * w), progress=0.1 * (4 - w)
        )
        for g in goals
        for w in range(5)
    )
    KeyResult.objects.bulk_create(
        KeyResult(goal=g, asana_gid=f"kr{g.pk}-{k}", name=f"KR {k}", progress=0.5)
        for g in goals
        for k in range(2)
    )
    client = Client()
    client.force_login(manager)
    client.get("/admin/?tab=goals")  # warm caches (templates, permissions)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with db.execute_wrapper(count):
        client.get("/admin/?tab=goals")
    times = []
    for _ in range(views):
        began = time.perf_counter()
        response = client.get("/admin/?tab=goals")
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
    times.sort()
    return len(queries), statistics.median(times), times[int(len(times) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=5000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--change-rates", default="0,0.142857,1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _setup_django(Path(tmp) / "bench.sqlite3")
        print(f"Snapshots in 30 days of daily syncs of {args.goals:,} goals:")
        for rate in (float(r) for r in args.change_rates.split(",")):
            rows, size, seconds = history_growth(args.goals, rate)
            print(
                f"  {rate:6.1%} of goals change a day: {rows:,} rows, {size / 1e6:.2f} MB, "
                f"{seconds * 1000:.0f} ms per daily comparison"
            )
        queries, median, p90 = tab_views(args.views)
        print(
            f"Goals tab, manager of 50 with 500 goals: {queries} queries, "
            f"median {median:.0f} ms, p90 {p90:.0f} ms per page view ({args.views} views)"
        )


if __name__ == "__main__":
    main()
