"""Benchmark: the task pipeline against the fake Asana over HTTP.

Prints the requests a poll cycle costs when nothing is new (10, 1,000 and 10,000 tagged
tasks), the requests each processed task costs, and the tasks processed per minute with a
no-op executor (`runpollers --once`, 1 and 4 workers). The fake is served from a forked
process so its work does not share our GIL; `--latency` adds a delay to every request.
Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/pipeline_bench.py [--tasks 200] [--latency 0.0]
"""

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)

NOTHING_NEW_SIZES = (10, 1_000, 10_000)
DEFAULT_BUDGET = 150  # ASANA_REQUESTS_PER_MINUTE's default
WORKER_COUNTS = (1, 4)


def noop(task: dict[str, Any]) -> dict[str, Any]:
    """The no-op executor (PILOT_EXECUTOR=bench.pipeline_bench:noop)."""
    return {"summary": "nothing to do"}


def noop_with_link(task: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "opened a PR", "url": "https://example.com/pr/1", "url_title": "PR #1"}


@contextmanager
def _serve_forked(fake: Any) -> Iterator[tuple[str, Callable[[], list]]]:
    """Serve the fake from a child process; yields its URL and a way to read its request log."""
    from django.db import connections

    from integrations.asana.fake.server import FakeAsanaServer

    connections.close_all()  # the child must not inherit open database connections
    ours, theirs = multiprocessing.get_context("fork").Pipe()

    def serve() -> None:
        with FakeAsanaServer(fake) as server:
            theirs.send(server.base_url)
            while theirs.recv() == "log":
                theirs.send([(m, p) for m, p, _ in fake.requests])

    child = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
    child.start()

    def request_log() -> list:
        ours.send("log")
        return ours.recv()

    try:
        yield ours.recv(), request_log
    finally:
        ours.send("stop")
        child.join(timeout=5)


def build_fake(tasks: int, latency: float, sizes: tuple[int, ...]) -> Any:
    """Every scenario's tasks up front (the fake is frozen once forked), one tag each."""
    from integrations.asana.fake.api import FakeAsana

    fake = FakeAsana()
    fake.seed()
    fake.latency = latency
    ws = fake.workspace_gid
    project = fake.add_project(ws, "Bench")
    for name in ("pilot-in-progress", "pilot-done", "pilot-failed"):
        fake.add_tag(ws, name)
    for size in sizes:
        for i in range(size):
            fake.add_task(
                ws,
                f"old {i}",
                tags=[f"idle-{size}", "pilot-done"],
                completed=True,
                projects=[project],
            )
    for scenario in ("plain", "link", *(f"w{w}" for w in WORKER_COUNTS)):
        for i in range(tasks):
            fake.add_task(ws, f"{scenario} {i}", notes="Do it.", tags=[f"run-{scenario}"])
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per processing scenario")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, NOTHING_NEW_SIZES)),
        help="tagged-task counts for the nothing-new polls",
    )
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        # The pipeline's own cost is measured here, not Asana's request budget (see the note).
        setup_django(
            Path(tmp) / "bench.sqlite3",
            LOG_LEVEL="WARNING",
            ASANA_REQUESTS_PER_MINUTE="1000000",
        )
        run(args.tasks, args.latency, sizes)


def _use_tag(connection: Any, tag: str) -> None:
    connection.pilot_tag = tag
    connection.tag_gids = {}
    connection.backlog_checked_at = None
    connection.last_poll_at = None  # a fresh start: `runpollers --once` finds it due
    connection.save()


def run(tasks: int, latency: float, sizes: tuple[int, ...]) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from integrations.models import AsanaConnection
    from integrations.pipeline.claims import claim
    from integrations.pipeline.poll import poll_connection
    from integrations.pipeline.runs import run_claimed

    fake = build_fake(tasks, latency, sizes)
    with _serve_forked(fake) as (base_url, request_log):
        settings.ASANA_API_BASE_URL = base_url
        # Thousands of claims an hour are the point here: the safety rail on claims is lifted.
        connection = AsanaConnection.objects.create(
            workspace_gid=fake.workspace_gid,
            access_token=fake.token,
            breaker_claims_per_hour=100_000,
        )
        print(f"fake Asana over HTTP, {latency * 1000:.0f} ms added per request\n")

        print("Poll cycle with nothing new (tag GIDs cached):")
        for size in sizes:
            _use_tag(connection, f"idle-{size}")
            poll_connection(connection)  # first poll: tag lookup
            started, cpu = time.perf_counter(), time.process_time()
            result = poll_connection(connection)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert result.ok and not result.candidates, result.message
            # Wall time is mostly the fake's (it scans every task for each page); CPU is ours.
            print(
                f"  {size:>6,} tagged tasks: {result.requests:>3} requests, "
                f"{elapsed * 1000:,.0f} ms wall, {cpu * 1000:,.0f} ms CPU in pilotsite"
            )

        print("\nRequests per processed task (no-op executor):")
        per_task: dict[str, float] = {}
        for scenario, executor in (("plain", "noop"), ("link", "noop_with_link")):
            settings.PILOT_EXECUTOR = f"bench.pipeline_bench:{executor}"
            _use_tag(connection, f"run-{scenario}")
            candidates = poll_connection(connection).candidates
            before = len(request_log())
            for gid in candidates:
                processed = claim(connection, gid, source="poll")
                assert processed is not None
                run_claimed(processed.pk, processed.claimed_by)
            made = request_log()[before:]
            kinds = Counter(f"{m} {_kind(p)}" for m, p in made)
            detail = ", ".join(f"{n / len(candidates):g} {k}" for k, n in sorted(kinds.items()))
            label = "result with a link" if scenario == "link" else "result without a link"
            per_task[scenario] = len(made) / len(candidates)
            print(f"  {label}: {per_task[scenario]:g} requests ({detail})")

        print("\nThroughput, `runpollers --once` (poll included):")
        settings.PILOT_EXECUTOR = "bench.pipeline_bench:noop"
        for workers in WORKER_COUNTS:
            _use_tag(connection, f"run-w{workers}")
            started = time.perf_counter()
            call_command("runpollers", "--once", "--workers", str(workers))
            elapsed = time.perf_counter() - started
            print(
                f"  {workers} worker(s): {tasks} tasks in {elapsed:.1f} s = "
                f"{tasks / elapsed * 60:,.0f} tasks/minute"
            )
        print(
            f"\nThese are the pipeline's own limits. With the client's default budget of "
            f"{DEFAULT_BUDGET} requests/minute per token (ASANA_REQUESTS_PER_MINUTE), one "
            f"token sustains about {DEFAULT_BUDGET / per_task['plain']:.0f} tasks/minute."
        )


def _kind(path: str) -> str:
    parts = path.strip("/").split("/")
    return "/".join(p if not p.isdigit() else "{gid}" for p in parts)


if __name__ == "__main__":
    main()
