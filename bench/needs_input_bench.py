"""Benchmark: asking for input, against the fake Asana over HTTP (served in this process).

Prints the requests a question adds to a run, the requests each poll adds per task waiting
for input, the requests a reply costs until its run has started, and how long a webhook
delivery carrying a reply takes to claim the task back (median of `--trials`). Not a test:
run it by hand and copy the figures into the README.

    .venv/bin/python bench/needs_input_bench.py [--trials 20] [--waiting 50]
"""

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)


def asks(task: dict[str, Any]) -> dict[str, Any]:
    """Asks once, then finishes (PILOT_EXECUTOR=bench.needs_input_bench:asks)."""
    if any(turn["kind"] == "reply" for turn in task["conversation"]):
        return {"summary": "done with the answer"}
    return {"needs_input": "Which environment should I deploy to?"}


def plain(task: dict[str, Any]) -> dict[str, Any]:
    return {"summary": "done"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--waiting", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(
            Path(tmp) / "bench.sqlite3",
            LOG_LEVEL="WARNING",
            ASANA_REQUESTS_PER_MINUTE="1000000",
            PILOT_EXECUTOR="bench.needs_input_bench:asks",
        )
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings

    from integrations.asana.fake.api import FakeAsana
    from integrations.asana.fake.server import FakeAsanaServer
    from integrations.models import AsanaConnection, ProcessedTask
    from integrations.pipeline import claims, runs
    from integrations.pipeline.poll import poll_connection
    from integrations.webhooks.delivery import handle_events

    fake = FakeAsana()
    fake.seed()
    fake.add_tag(fake.workspace_gid, "pilot")
    person = fake.add_user("Ann Asana", "ann@example.com", [fake.workspace_gid])
    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url
        connection = AsanaConnection.objects.create(
            workspace_gid=fake.workspace_gid, access_token=fake.token
        )
        from integrations.models import WebhookRegistration

        registration = WebhookRegistration.objects.create(
            connection=connection,
            resource_gid="1",
            target_url="https://pilot.example.com/webhooks/asana/x/",
            state=WebhookRegistration.State.ACTIVE,
            secret=secrets.token_hex(16),
        )

        def task() -> str:
            gid = fake.add_task(fake.workspace_gid, "Deploy", tags=["pilot"])
            fake.set_task(gid, assignee=person)
            return gid

        def process(gid: str) -> Counter:
            fake.reset_requests()
            claimed = claims.claim(connection, gid, source="poll")
            assert claimed is not None
            runs.run_claimed(claimed.pk, claimed.claimed_by)
            return Counter(f"{m} {_shape(p)}" for m, p, _ in fake.requests)

        poll_connection(connection)  # tags listed, created and cached; the token's user too
        settings.PILOT_EXECUTOR = "bench.needs_input_bench:plain"
        process(task())  # warm-up: who pilotsite is in Asana is read once, not per run
        plain_run = process(task())
        settings.PILOT_EXECUTOR = "bench.needs_input_bench:asks"
        asking_run = process(task())
        print(
            "requests a plain run makes:", sum(plain_run.values()), dict(sorted(plain_run.items()))
        )
        print(
            "requests a run that asks makes:",
            sum(asking_run.values()),
            dict(sorted(asking_run.items())),
        )

        for _ in range(args.waiting - 1):
            process(task())
        waiting = ProcessedTask.objects.filter(state=ProcessedTask.State.WAITING).count()
        fake.reset_requests()
        connection.last_poll_at = None
        poll_connection(connection)
        stories = sum(1 for m, p, _ in fake.requests if p.endswith("/stories"))
        print(
            f"a poll with {waiting} tasks waiting: {len(fake.requests)} requests, {stories} stories reads"
        )

        timings = []
        reply_requests = []
        for row in list(ProcessedTask.objects.filter(state=ProcessedTask.State.WAITING))[
            : args.trials
        ]:
            story = fake.person_comments(row.task_gid, person, "staging")
            event = fake.event(story, "added", parent_gid=row.task_gid)
            fake.reset_requests()
            started = time.perf_counter()
            outcome = handle_events(registration.pk, [event])
            timings.append((time.perf_counter() - started) * 1000)
            reply_requests.append(len(fake.requests))
            assert outcome.resumed == [row.task_gid], outcome
        print(
            f"webhook delivery with a reply -> task claimed back ({len(timings)} trials): "
            f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms, "
            f"{statistics.median(reply_requests):.0f} request(s)"
        )


def _shape(path: str) -> str:
    return "/".join("{gid}" if part.isdigit() else part for part in path.split("/"))


if __name__ == "__main__":
    main()
