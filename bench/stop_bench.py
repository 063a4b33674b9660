"""Benchmark: from a stop signal (a webhook delivery) to the executor's process group gone,
with gunicorn and `manage.py qcluster` running; and the requests progress and stop add.

Each trial tags a task `pilot` and announces it by a signed delivery; the q cluster claims
and runs examples/progress_executor.py (a progress line every 0.5 s). Once its first progress
line is on the run, a person removes the pilot tag in the fake Asana and the change is
delivered; the time is measured from sending that delivery to every process of the group
having exited, and to `killpg(group, 0)` failing: the command runs under `/bin/sh -c`, and
when the shell dies first its child becomes an orphan that the machine's init reaps, on some
machines a second or two later (a zombie runs nothing, but stays in the process table). It
then counts the run's requests by kind.

Not a test: run it by hand and copy the figures into the README.

    .venv/bin/python bench/stop_bench.py [--trials 10]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import start_django
from bench.webhook_bench import PYTHON, ROOT, _environment, _process, serve_site

EXAMPLE = ROOT / "examples" / "progress_executor.py"


def _group_alive(group: int) -> bool:
    """Any process of the group still in the process table (a zombie counts)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _group_running(group: int) -> bool:
    """Any process of the group that has not exited (zombies, which run nothing, do not
    count): read from /proc, fields 3 and 5 of /proc/PID/stat being state and group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _wait(check, seconds: float, what: str):
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")


def run(args: argparse.Namespace, tmp: Path) -> None:
    from integrations.asana.fake.api import FakeAsana
    from integrations.asana.fake.server import FakeAsanaServer

    fake = FakeAsana()
    fake.seed()
    project = fake.add_project(fake.workspace_gid, "Bench")
    pid_file = tmp / "group"
    with FakeAsanaServer(fake) as server:
        env = _environment(tmp / "bench.sqlite3", server.base_url)
        env["PILOT_EXECUTOR_COMMAND"] = (
            f"{PYTHON} {EXAMPLE} --steps 1000 --pause 0.5 --pid-file {pid_file}"
        )
        env["PILOT_PROGRESS_SECONDS"] = str(args.progress_seconds)
        os.environ.update(env)
        start_django()
        from integrations.connect import connect_workspace
        from integrations.models import Run
        from integrations.webhooks.registration import register_webhook

        connection = connect_workspace(fake.token, fake.workspace_gid, polling_enabled=False)
        delays: list[float] = []
        exits: list[float] = []
        kinds: Counter[str] = Counter()
        with serve_site(env, 2) as port:
            registration = register_webhook(connection, project, f"http://127.0.0.1:{port}")
            with _process([PYTHON, "manage.py", "qcluster"], env):
                time.sleep(3)
                for i in range(args.trials):
                    pid_file.unlink(missing_ok=True)
                    task = fake.add_task(
                        fake.workspace_gid, f"bench {i}", tags=["pilot"], projects=[project]
                    )
                    fake.reset_requests()
                    fake.deliver(
                        registration.webhook_gid, [fake.event(task, "added", parent_gid=project)]
                    )
                    _wait(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "start")
                    group = int(pid_file.read_text())
                    _wait(
                        lambda task=task: (
                            Run.objects.filter(processed_task__task_gid=task)
                            .exclude(progress=[])
                            .exists()
                        ),
                        30,
                        "progress",
                    )
                    time.sleep(args.run_seconds)
                    fake.person_changes_task(task, fake.user_gid, remove=["pilot"])
                    event = fake.event(task, "changed", field="tags")
                    started = time.perf_counter()
                    fake.deliver(registration.webhook_gid, [event])
                    _wait(lambda group=group: not _group_running(group), 30, "the group to exit")
                    exits.append(time.perf_counter() - started)
                    _wait(
                        lambda group=group: not _group_alive(group), 30, "the process group to end"
                    )
                    delays.append(time.perf_counter() - started)
                    _wait(
                        lambda task=task: "pilot-in-progress" not in fake.tag_names(task),
                        30,
                        "the report",
                    )
                    time.sleep(0.5)
                    for method, path, _ in fake.requests:
                        kind = (
                            "PUT /stories (progress edit)"
                            if path.startswith("/stories/")
                            else f"{method} {path.split('/')[1]}"
                        )
                        kinds[kind] += 1
    for what, times in (
        ("every process of the executor's group exited", exits),
        ("the group gone from the process table (zombies reaped)", delays),
    ):
        print(
            f"stop delivery → {what}, qcluster + gunicorn, SQLite ({len(times)} trials): "
            f"median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms"
        )
    print(
        f"requests per run ({args.run_seconds:g} s of progress, PILOT_PROGRESS_SECONDS={args.progress_seconds:g}), averaged:"
    )
    for kind, n in sorted(kinds.items()):
        print(f"  {kind}: {n / len(delays):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--run-seconds", type=float, default=3.0)
    parser.add_argument("--progress-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
