"""`manage.py runpollers`: in-process with --once, and as a real process for signals and kill -9."""

import logging
import os
import signal
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.models import ProcessedTask
from integrations.pipeline import jobs
from integrations.pipeline.outcome import INTERRUPTED
from integrations.pipeline.report import STARTED_TEXT
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import comment_texts, interval_passes, tagged

State = ProcessedTask.State
pytestmark = pytest.mark.django_db(transaction=True)

# Runs until the gate file exists (or `seconds` pass), so a test decides when it ends.
GATED_EXECUTOR = """\
import json, os, sys, time
task = json.load(sys.stdin)
with open({marks!r}, "a") as marks:
    marks.write(f"{{task['gid']}} {{os.getpgrp()}}\\n")
deadline = time.monotonic() + {seconds}
while not os.path.exists({gate!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({{"summary": "slow but done"}}))
"""


def gated_executor(tmp_path, seconds: float) -> tuple[str, str, str]:
    """The command line, the file it marks each start in, and its gate."""
    marks, gate = tmp_path / "marks.txt", tmp_path / "gate"
    marks.touch()
    script = tmp_path / "gated.py"
    script.write_text(GATED_EXECUTOR.format(marks=str(marks), gate=str(gate), seconds=seconds))
    return f"{sys.executable} {script}", str(marks), str(gate)


def lines(path: str) -> list[str]:
    with open(path) as f:
        return f.read().splitlines()


def unfinished() -> int:
    return ProcessedTask.objects.filter(state__in=(State.CLAIMED, State.RUNNING)).count()


# -- in-process ----------------------------------------------------------------------------


def test_once_runs_every_tagged_task_then_exits(connection, pilot, executor):
    gids = [tagged(pilot, f"task {i}") for i in range(6)]
    call_command("runpollers", "--once", "--workers", "3")
    assert sorted(executor) == sorted(gids)
    assert ProcessedTask.objects.filter(state=State.DONE).count() == 6
    assert unfinished() == 0


def test_logs_one_line_per_cycle_and_per_task(connection, pilot, executor, caplog):
    gids = [tagged(pilot, f"task {i}") for i in range(2)]
    with caplog.at_level(logging.INFO):
        call_command("runpollers", "--once")
    messages = [r.getMessage() for r in caplog.records]
    assert (
        sum(m.startswith(f"poll {pilot.workspace_gid}: ok: 2 tagged, 2 new") for m in messages) == 1
    )
    for gid in gids:
        assert sum(m.startswith(f"ASANA-{gid} done") for m in messages) == 1


def test_once_within_the_interval_polls_nothing_and_says_so(connection, pilot, executor, caplog):
    call_command("runpollers", "--once")
    pilot.reset_requests()
    with caplog.at_level(logging.INFO):
        call_command("runpollers", "--once")
    assert pilot.requests == []
    assert any(
        r.getMessage().startswith(f"poll {pilot.workspace_gid}: not due") for r in caplog.records
    )
    interval_passes(connection)
    call_command("runpollers", "--once")
    assert [p for _, p, _ in pilot.requests] == [f"/workspaces/{pilot.workspace_gid}/tasks/search"]


def test_runpollers_and_the_cluster_share_the_poll_slot(connection, pilot, executor):
    jobs.poll_all()
    pilot.reset_requests()
    call_command("runpollers", "--once")
    assert pilot.requests == []


def test_nothing_is_claimed_without_an_executor(connection, pilot, settings):
    settings.PILOT_EXECUTOR = settings.PILOT_EXECUTOR_COMMAND = ""
    tagged(pilot, "waiting for an executor")
    call_command("runpollers", "--once")
    assert not ProcessedTask.objects.exists()


def test_workers_must_be_at_least_one(db):
    with pytest.raises(CommandError):
        call_command("runpollers", "--once", "--workers", "0")


# -- as a real process -------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_the_running_execution_finish_and_leaves_nothing_claimed(
    connection, pilot, tmp_path, signum
):
    command, marks, gate = gated_executor(tmp_path, seconds=60)
    first = tagged(pilot, "first")
    second = tagged(pilot, "second")
    env = procs.child_env(pilot.base_url, PILOT_EXECUTOR_COMMAND=command)
    log = tmp_path / "runpollers.log"
    proc = procs.start(["runpollers", "--workers", "1"], env, log)
    try:
        procs.wait_for(lambda: lines(marks), what="the first execution to start")
        proc.send_signal(signum)
        procs.wait_for(lambda: "no new claims" in log.read_text(), what="the signal's effect")
        open(gate, "w").close()  # the running execution may finish now
        assert proc.wait(timeout=60) == 0
    finally:
        procs.stop(proc)
    assert [m.split()[0] for m in lines(marks)] == [first]
    assert unfinished() == 0
    assert ProcessedTask.objects.get(task_gid=first).state == State.DONE
    assert not ProcessedTask.objects.filter(task_gid=second).exists()
    assert comment_texts(pilot, first) == [STARTED_TEXT, "Successfully completed: slow but done"]


def test_process_killed_mid_execution_is_recovered_as_interrupted_on_next_start(
    connection, pilot, tmp_path, settings
):
    command, marks, _ = gated_executor(tmp_path, seconds=120)
    gid = tagged(pilot, "killed mid-run")
    env = procs.child_env(pilot.base_url, PILOT_EXECUTOR_COMMAND=command)
    log = tmp_path / "runpollers.log"
    proc = procs.start(["runpollers"], env, log)
    try:
        group = int(procs.wait_for(lambda: lines(marks), what="the execution")[0].split()[1])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        procs.stop(proc)
    os.killpg(group, signal.SIGKILL)  # the executor had its own process group
    assert ProcessedTask.objects.get(task_gid=gid).state == State.RUNNING

    # Restarted while the lease still holds: the task may still be running somewhere.
    assert procs.run(["runpollers", "--once"], env, log) == 0
    assert ProcessedTask.objects.get(task_gid=gid).state == State.RUNNING
    assert comment_texts(pilot, gid) == [STARTED_TEXT]

    # Time passes beyond the lease: the next start reports it failed and retryable.
    ProcessedTask.objects.filter(task_gid=gid).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert procs.run(["runpollers", "--once"], env, log) == 0
    row = ProcessedTask.objects.get(task_gid=gid)
    assert row.state == State.FAILED and row.error == INTERRUPTED
    assert comment_texts(pilot, gid) == [STARTED_TEXT, f"Failed: {INTERRUPTED}"]
    assert sorted(pilot.tag_names(gid)) == ["pilot", "pilot-failed"]
    assert len(lines(marks)) == 1  # never run a second time on its own

    # Retryable: once pilot-failed is removed, the next cycle (here, in this process) runs it.
    connection.refresh_from_db()
    pilot.person_changes_task(gid, pilot.user_gid, remove=["pilot-failed"])
    interval_passes(connection)
    settings.PILOT_EXECUTOR_COMMAND = gated_executor(tmp_path, seconds=0)[0]
    call_command("runpollers", "--once")
    assert ProcessedTask.objects.get(task_gid=gid).state == State.DONE
    assert unfinished() == 0
