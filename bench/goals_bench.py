"""Benchmark: one goal sync of 500 employees owning 5,000 goals, from the fake Asana over HTTP.

A tenth of the goals have 3 sub-goals; every request to the fake waits 30 ms. Prints the
requests made, the wall time, and the requests a per-employee fetch would have needed.
Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/goals_bench.py [--employees 500] [--goals 5000] [--latency 0.03]
"""

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=500)
    parser.add_argument("--goals", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.030, help="seconds per request")
    parser.add_argument("--workers", type=int, default=None, help="sub-goal lookups in flight")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        if args.workers:
            from django.conf import settings

            settings.GOALS_SYNC_WORKERS = args.workers
        run(args.employees, args.goals, args.latency)


@contextmanager
def _served_elsewhere(fake: Any) -> Iterator[tuple[str, Callable[[], tuple[list, list]]]]:
    """Serve the fake from a forked process: Asana's own work must not share our GIL.

    Yields the base URL and a function returning the requests the fake saw (and any
    contract violations)."""
    from integrations.asana.fake.server import FakeAsanaServer

    parent_end, child_end = multiprocessing.get_context("fork").Pipe()

    def serve() -> None:
        with FakeAsanaServer(fake) as server:
            child_end.send(server.base_url)
            child_end.recv()  # until the parent asks for the log
            child_end.send((fake.requests, fake.violations))

    child = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
    child.start()
    try:

        def request_log() -> tuple[list, list]:
            parent_end.send("log")
            return parent_end.recv()

        yield parent_end.recv(), request_log
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


def run(n_employees: int, n_goals: int, latency: float) -> None:
    from django.conf import settings

    from goals.models import Goal, KeyResult
    from goals.sync import sync_goals
    from integrations.asana.client import PAGE_SIZE, AsanaClient
    from integrations.asana.fake.api import FakeAsana
    from integrations.models import AsanaConnection, AsanaMapping, Employee

    fake = FakeAsana()
    fake.seed()
    ws = fake.workspace_gid
    connection = AsanaConnection.objects.create(
        workspace_gid=ws, workspace_name="Bench", access_token=fake.token
    )
    owners = []
    for i in range(n_employees):
        email = f"employee{i}@example.com"
        user_gid = fake.add_user(f"Employee {i}", email, [ws])
        employee = Employee.objects.create(name=f"Employee {i}", email=email)
        AsanaMapping.objects.create(
            employee=employee, connection=connection, asana_user_gid=user_gid
        )
        owners.append(user_gid)
    subgoals = 0
    for i in range(n_goals):
        gid = fake.add_goal(ws, f"Goal {i}", owner_gid=owners[i % n_employees], status="green")
        if i % 10 == 0:
            for k in range(3):
                fake.add_goal(ws, f"Goal {i} KR {k}", status="yellow", parent_gid=gid)
                subgoals += 1

    fake.latency = latency
    with _served_elsewhere(fake) as (base_url, request_log):
        client = AsanaClient(fake.token, base_url=base_url, requests_per_minute=1_000_000)
        started = time.perf_counter()
        result = sync_goals(connection, client=client, source="bench")
        wall = time.perf_counter() - started
        client.close()
        requests, violations = request_log()

    if not result.ok:
        sys.exit(f"sync failed: {result.error}")
    if violations:
        sys.exit(f"requests broke the Asana contract: {violations[:3]}")
    list_pages = math.ceil((n_goals + subgoals) / PAGE_SIZE)
    lookups = sum(1 for r in requests if r[1] == "/goal_relationships")
    # GET /goals has no owner filter, so a per-employee fetch reads the whole list each time.
    per_employee = n_employees * list_pages + lookups
    workers = getattr(settings, "GOALS_SYNC_WORKERS", 8)
    print(
        f"employees {n_employees}, goals {n_goals} (+{subgoals} sub-goals), "
        f"latency {latency * 1000:.0f} ms, {workers} sub-goal lookups in flight"
    )
    print(f"stored: {Goal.objects.count()} goals, {KeyResult.objects.count()} key results")
    print(
        f"requests made: {len(requests)} "
        f"({len(requests) - lookups} goal-list pages + {lookups} sub-goal lookups)"
    )
    print(f"wall time: {wall:.1f} s")
    print(
        f"a per-employee fetch would need: {per_employee} requests "
        f"({n_employees} x {list_pages} goal-list pages + {lookups} sub-goal lookups)"
    )


if __name__ == "__main__":
    main()
