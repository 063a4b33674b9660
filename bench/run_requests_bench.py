"""Benchmark: the Asana requests a run costs, and what progress lines and stop checks add.

Each scenario runs one task end to end against the fake Asana over HTTP (served from a
thread of this process, which records every request): the claim's run (`run_claimed`)
executes a real command in a thread, as a `runpollers` worker would, while this thread polls
the connection every `--poll-seconds` when the scenario polls (each poll reads every task the
connection has running: the stop check). The executor runs about `--run-seconds` in every
scenario: silent (`sleep`), or examples/progress_executor.py printing a progress line every
0.5 s. The table counts the run's requests (from the claim to the report) and the polls'
requests, by kind.

Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/run_requests_bench.py [--run-seconds 10] [--poll-seconds 2]
"""

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)

EXAMPLE = ROOT / "examples" / "progress_executor.py"
PROGRESS_PAUSE = 0.5


@dataclass
class Scenario:
    name: str
    progress: bool = False
    progress_seconds: float = 30.0
    polls: bool = False
    stop_by_poll: bool = False


SCENARIOS = [
    Scenario("no progress lines"),
    Scenario("progress every 0.5 s, PILOT_PROGRESS_SECONDS=30 (default)", progress=True),
    Scenario("progress every 0.5 s, PILOT_PROGRESS_SECONDS=1", progress=True, progress_seconds=1),
    Scenario("no progress lines, polled (stop checks)", progress=False, polls=True),
    Scenario("polled, stopped by a poll (pilot tag removed)", progress=False, stop_by_poll=True),
]


def kind(method: str, path: str) -> str:
    """A request as the table names it: the method and the path with GIDs folded."""
    parts = ["{gid}" if part.isdigit() else part for part in path.split("/")]
    return f"{method} {'/'.join(parts)}"


def command(scenario: Scenario, run_seconds: float) -> str:
    if scenario.progress:
        steps = max(int(run_seconds / PROGRESS_PAUSE), 1)
        return f"{sys.executable} {EXAMPLE} --steps {steps} --pause {PROGRESS_PAUSE}"
    return f'sleep {run_seconds:g}; echo \'{{"summary": "slept"}}\''


def run_one(fake, connection, scenario: Scenario, args: argparse.Namespace, n: int):
    """One task through its run; returns (the run's requests, the polls' requests, polls)."""
    from django.conf import settings
    from django.db import connection as db

    from integrations.models import ProcessedTask
    from integrations.pipeline.claims import claim
    from integrations.pipeline.poll import poll_connection
    from integrations.pipeline.runs import run_claimed

    settings.PILOT_EXECUTOR_COMMAND = command(scenario, args.run_seconds)
    settings.PILOT_PROGRESS_SECONDS = scenario.progress_seconds
    task = fake.add_task(fake.workspace_gid, f"bench {n}", tags=["pilot"])
    poll_connection(connection)  # the tags are cached and the task is seen, as in real life
    processed = claim(connection, task, source="poll")
    assert processed is not None
    fake.reset_requests()
    poll_requests: list[tuple[str, str]] = []
    polls = 0

    def execute() -> None:
        try:
            run_claimed(processed.pk, processed.claimed_by)
        finally:
            db.close()

    worker = threading.Thread(target=execute)
    worker.start()
    polling = scenario.polls or scenario.stop_by_poll
    stop_at = time.monotonic() + args.run_seconds / 2
    stopped = False
    while worker.is_alive():
        worker.join(args.poll_seconds if polling else None)
        if not worker.is_alive() or not polling:
            break
        if scenario.stop_by_poll and not stopped and time.monotonic() >= stop_at:
            fake.person_changes_task(task, fake.user_gid, remove=["pilot"])
            stopped = True
        before = len(fake.requests)
        poll_connection(connection)
        polls += 1
        poll_requests += [(m, p) for m, p, _ in fake.requests[before:]]
    worker.join()
    # The polls' requests were recorded in the same log: take them out of the run's.
    counts = Counter((m, p) for m, p, _ in fake.requests)
    counts.subtract(Counter(poll_requests))
    run_requests = list(counts.elements())
    state = ProcessedTask.objects.get(pk=processed.pk).state
    return run_requests, poll_requests, polls, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-seconds", type=float, default=10.0)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(
            Path(tmp) / "bench.sqlite3",
            LOG_LEVEL="WARNING",
            PILOT_STOP_CHECK_SECONDS="0.5",
            ASANA_REQUESTS_PER_MINUTE="1000000",
            ASANA_BUDGET_PATH=str(Path(tmp) / "budget"),
        )
        from integrations.asana.fake.api import FakeAsana
        from integrations.asana.fake.server import FakeAsanaServer
        from integrations.connect import connect_workspace

        fake = FakeAsana()
        fake.seed()
        fake.add_tag(fake.workspace_gid, "pilot")
        with FakeAsanaServer(fake) as server:
            from django.conf import settings

            settings.ASANA_API_BASE_URL = server.base_url
            settings.PILOT_EXECUTOR = ""
            connection = connect_workspace(fake.token, fake.workspace_gid, polling_enabled=False)
            # A first run looks up who pilotsite is in Asana (once per process): not counted.
            warm_up = argparse.Namespace(run_seconds=0, poll_seconds=args.poll_seconds)
            run_one(fake, connection, Scenario("warm-up"), warm_up, len(SCENARIOS))
            rows = []
            for n, scenario in enumerate(SCENARIOS):
                run_requests, poll_requests, polls, state = run_one(
                    fake, connection, scenario, args, n
                )
                rows.append((scenario, run_requests, poll_requests, polls, state))
    print(
        f"One run of about {args.run_seconds:g} s per scenario; polls every "
        f"{args.poll_seconds:g} s where polled.\n"
    )
    baseline = len(rows[0][1])
    print(
        "| scenario | outcome | requests by the run | added to a silent run "
        "| by the polls during it (polls) |"
    )
    print("|---|---|---|---|---|")
    for scenario, run_requests, poll_requests, polls, state in rows:
        poll_text = f"{len(poll_requests)} ({polls})" if polls else "—"
        added = len(run_requests) - baseline
        print(f"| {scenario.name} | {state} | {len(run_requests)} | {added:+d} | {poll_text} |")
    print()
    for scenario, run_requests, poll_requests, _, _ in rows:
        print(f"{scenario.name}:")
        for name, count in sorted(Counter(kind(m, p) for m, p in run_requests).items()):
            print(f"  run   {count:3d}  {name}")
        for name, count in sorted(Counter(kind(m, p) for m, p in poll_requests).items()):
            print(f"  polls {count:3d}  {name}")


if __name__ == "__main__":
    main()
