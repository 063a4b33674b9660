"""Benchmark: what each rollout mode costs in Asana requests, against the fake over HTTP.

For `--tasks` tasks per mode (no-op executor, result with a link): the requests (and the
writes among them) each processed task costs in automatic and shadow mode; in approval
mode, what the wait costs (claiming and reporting it), what each poll adds per waiting
task, what an approver's `pilot-approved` tag costs the poll that sees it, and the run
that follows. Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/modes_bench.py [--tasks 20]
"""

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import setup_django  # noqa: E402 (after the path is set)

WRITES = ("POST", "PUT", "DELETE")


def noop_with_link(task: dict[str, Any]) -> dict[str, Any]:
    """The executor (PILOT_EXECUTOR=bench.modes_bench:noop_with_link)."""
    return {"summary": "opened a PR", "url": "https://example.com/pr/1", "url_title": "PR #1"}


def _kind(path: str) -> str:
    parts = path.strip("/").split("/")
    return "/".join(p if not p.isdigit() else "{gid}" for p in parts)


class Meter:
    """Counts the fake's requests between `start()` and `per(n)`."""

    def __init__(self, fake: Any) -> None:
        self.fake, self.mark = fake, 0

    def start(self) -> None:
        self.mark = len(self.fake.requests)

    def per(self, n: int, what: str) -> None:
        made = [(m, p) for m, p, _ in self.fake.requests[self.mark :]]
        writes = sum(m in WRITES for m, _ in made)
        kinds = Counter(f"{m} {_kind(p)}" for m, p in made)
        detail = ", ".join(f"{c / n:g} {k}" for k, c in sorted(kinds.items())) or "none"
        print(f"  {what}: {len(made) / n:g} requests, {writes / n:g} writes ({detail})")


def process(connection: Any, gids: list[str]) -> None:
    """Claim and run each task here, as a poller would."""
    from integrations.pipeline.claims import claim
    from integrations.pipeline.runs import run_claimed

    for gid in gids:
        row = claim(connection, gid, source="poll")
        assert row is not None, gid
        run_claimed(row.pk, row.claimed_by)


def run(tasks: int) -> None:
    from django.conf import settings

    from integrations.asana.fake.api import FakeAsana
    from integrations.asana.fake.server import FakeAsanaServer
    from integrations.models import AsanaConnection, AsanaMapping, Employee
    from integrations.pipeline.convert import APPROVED_TAG
    from integrations.pipeline.poll import poll_connection

    fake = FakeAsana()
    fake.seed()
    ws = fake.workspace_gid
    fake.add_tag(ws, "pilot")
    approver = fake.add_user("Ann", "ann@example.com", [ws])
    settings.PILOT_EXECUTOR = "bench.modes_bench:noop_with_link"
    meter = Meter(fake)
    with FakeAsanaServer(fake) as server:
        settings.ASANA_API_BASE_URL = server.base_url
        for mode in ("automatic", "shadow", "approval"):
            print(f"{mode} ({tasks} tasks):")
            connection = AsanaConnection.objects.create(
                workspace_gid=ws, access_token=fake.token, rollout_mode=mode, pilot_tag="pilot"
            )
            if mode == "approval":
                employee = Employee.objects.create(name="Ann", email="ann@example.com")
                employee.is_approver = True
                employee.save()
                AsanaMapping.objects.create(
                    employee=employee, connection=connection, asana_user_gid=approver
                )
            gids = [fake.add_task(ws, f"{mode} {i}", tags=["pilot"]) for i in range(tasks)]
            poll_connection(connection)  # tags listed (and created) outside the measure

            meter.start()
            process(connection, gids)
            if mode != "approval":
                meter.per(tasks, "per processed task")
                connection.delete()
                continue
            meter.per(tasks, "claiming a task and reporting its wait")
            meter.start()
            connection.last_poll_at = None
            idle = poll_connection(connection)
            baseline = idle.requests
            meter.per(tasks, f"each poll, per waiting task (the poll itself: {baseline})")
            for gid in gids:
                fake.person_changes_task(gid, approver, add=[APPROVED_TAG])
            meter.start()
            connection.last_poll_at = None
            seen = poll_connection(connection)
            assert len(seen.approved) == tasks, seen.message
            meter.per(tasks, "the poll that sees the approver's tag, per task")
            meter.start()
            process(connection, gids)
            meter.per(tasks, "the approved run, per task")
            connection.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(
            Path(tmp) / "bench.sqlite3", LOG_LEVEL="WARNING", ASANA_REQUESTS_PER_MINUTE="1000000"
        )
        run(args.tasks)


if __name__ == "__main__":
    main()
