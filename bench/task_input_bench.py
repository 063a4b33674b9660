"""Benchmark: what handing the executor the whole task costs in requests to Asana.

Runs tasks of several shapes through the pipeline (claim and run, no-op executor) against
the fake Asana over HTTP and prints, per run, the reads made for the executor's input
(the task, its stories, attachments and subtasks), every request of the run by kind, and
the size of the input as JSON. Before the executor got the whole task a run read the task
once; the difference is what this feature costs. Not a test: run it by hand and copy the
figures into the README.

    .venv/bin/python bench/task_input_bench.py [--tasks 20]
"""

import argparse
import importlib
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline_bench import _kind, _serve_forked  # noqa: E402 (after the path is set)
from bench.support import setup_django  # noqa: E402

SCENARIOS = (
    ("no comments, no subtasks", 0, 0),
    ("a comment thread (10 comments)", 10, 0),
    ("a long thread (150 comments: two pages of stories)", 150, 0),
    ("a thread and 3 subtasks", 10, 3),
)
INPUT_SIZES: list[int] = []


def record(task: dict[str, Any]) -> dict[str, Any]:
    """The executor (PILOT_EXECUTOR=bench.task_input_bench:record): notes the input's size."""
    INPUT_SIZES.append(len(json.dumps(task)))
    return {"summary": "nothing to do"}


def build_fake(tasks: int) -> Any:
    """Every scenario's tasks up front (the fake is frozen once forked), one tag each;
    every task is assigned, due, in a section, with a custom field and an attachment."""
    from integrations.asana.fake.api import FakeAsana

    fake = FakeAsana()
    fake.seed()
    ws = fake.workspace_gid
    ann = fake.add_user("Ann Lee", "ann@example.com", [ws])
    project = fake.add_project(ws, "Bench")
    section = fake.add_section(project, "Doing")
    for name in ("pilot-in-progress", "pilot-done", "pilot-failed"):
        fake.add_tag(ws, name)
    for number, (_, comments, subtasks) in enumerate(SCENARIOS):
        for i in range(tasks):
            gid = fake.add_task(ws, f"task {i}", notes="Do it.", projects=[project])
            fake.person_changes_task(gid, ann, add=[f"run-{number}"])
            fake.set_task(gid, assignee=ann, due_on="2026-12-24", sections={project: section})
            fake.set_custom_field(gid, "Stage", "Review", subtype="enum")
            fake.add_attachment(gid, "mockup.png")
            for c in range(comments):
                fake.person_comments(gid, ann, f"Comment {c}: " + "details " * 20)
            for s in range(subtasks):
                fake.add_task(ws, f"step {s}", parent=gid)
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks per scenario")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(
            Path(tmp) / "bench.sqlite3", LOG_LEVEL="WARNING", ASANA_REQUESTS_PER_MINUTE="1000000"
        )
        run(args.tasks)


def run(tasks: int) -> None:
    from django.conf import settings

    from integrations.models import AsanaConnection
    from integrations.pipeline.claims import claim
    from integrations.pipeline.poll import poll_connection
    from integrations.pipeline.runs import run_claimed

    # The executor runs as bench.task_input_bench (imported by name), not as __main__.
    sizes = importlib.import_module("bench.task_input_bench").INPUT_SIZES
    fake = build_fake(tasks)
    input_kinds = {
        "GET tasks/{gid}",
        "GET tasks/{gid}/stories",
        "GET attachments",
        "GET tasks/{gid}/subtasks",
    }
    settings.PILOT_EXECUTOR = "bench.task_input_bench:record"
    with _serve_forked(fake) as (base_url, request_log):
        settings.ASANA_API_BASE_URL = base_url
        connection = AsanaConnection.objects.create(
            workspace_gid=fake.workspace_gid, access_token=fake.token
        )
        print(f"fake Asana over HTTP, {tasks} tasks per scenario\n")
        for number, (label, _, _) in enumerate(SCENARIOS):
            connection.pilot_tag, connection.tag_gids = f"run-{number}", {}
            connection.backlog_checked_at = connection.last_poll_at = None
            connection.save()
            candidates = poll_connection(connection).candidates
            assert len(candidates) == tasks, candidates
            before, sizes[:] = len(request_log()), []
            for gid in candidates:
                processed = claim(connection, gid, source="poll")
                assert processed is not None
                run_claimed(processed.pk, processed.claimed_by)
            kinds = Counter(f"{m} {_kind(p)}" for m, p in request_log()[before:])
            reads = sum(n for k, n in kinds.items() if k in input_kinds) / tasks
            every = ", ".join(f"{n / tasks:g} {k}" for k, n in sorted(kinds.items()))
            print(f"{label}:")
            print(f"  input reads per run: {reads:g} (before: 1 task read; +{reads - 1:g})")
            print(f"  all requests per run: {sum(kinds.values()) / tasks:g} ({every})")
            print(f"  input size: {max(sizes):,} bytes of JSON\n")


if __name__ == "__main__":
    main()
