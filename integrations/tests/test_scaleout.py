"""The scale-out deployment, for real: two q clusters on the Redis broker and two `runpollers`
against one PostgreSQL database and the fake Asana over HTTP, webhook deliveries arriving
through gunicorn at the same time, every process started from `deploy/Procfile`.

Runs in `.ci/run`'s PostgreSQL pass (which starts Redis); skipped elsewhere with the reason.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings

from integrations.models import ProcessedTask
from integrations.pipeline import jobs
from integrations.pipeline.outcome import INTERRUPTED
from integrations.pipeline.report import STARTED_TEXT
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import tag_gid
from integrations.webhooks.registration import register_webhook

State = ProcessedTask.State
ROOT = Path(settings.BASE_DIR)
PROCFILE = ROOT / "deploy" / "Procfile"
UNITS = ROOT / "deploy" / "systemd"
# Where .ci/run starts Redis.
REDIS_URL = "redis://127.0.0.1:6379/0"
TASKS = 500
# The deployment's one request budget per token (shared through Redis by all four
# processes); lower than what they would send unchecked, so the budget is what holds them.
BUDGET = 3000
BATCH = 25  # tasks tagged (and announced by one webhook delivery) at a time


def _redis_problem() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"needs Redis at {REDIS_URL} ({type(exc).__name__}); .ci/run starts it"
    return None


def _skip_reason() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return (
            "the scale-out suite runs on PostgreSQL with Redis (DATABASE_URL=postgres://…, as in "
            ".ci/run's PostgreSQL pass)"
        )
    problem = _redis_problem()
    # .ci/run starts Redis for its PostgreSQL pass and says so: there a missing Redis fails.
    if problem and os.environ.get("PILOT_SCALEOUT_REQUIRED") != "1":
        return problem
    return None


deployment = [
    pytest.mark.scaleout,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
    pytest.mark.django_db(transaction=True),
]


def procfile() -> dict[str, str]:
    """{process kind: command line} from deploy/Procfile."""
    lines = PROCFILE.read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def start(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The Procfile's line for `kind`, run by sh as a Procfile runner does (this checkout's
    interpreter in place of `.venv/bin/python`), in a session of its own."""
    command = procfile()[kind].replace(".venv/bin/python", shlex.quote(sys.executable))
    with log.open("ab") as out:
        return subprocess.Popen(
            ["sh", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_in_a_minute(times: list[float]) -> int:
    """The most requests that arrived in any sliding 60-second window, measured 1 s short:
    the budget counts a request when it is sent, the fake when it arrives, and arrivals
    jitter against sends by milliseconds."""
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 59:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_the_systemd_units_run_the_procfile_commands():
    expected = {
        "pilotsite-web.service": "web",
        "pilotsite-qcluster@.service": "cluster",
        "pilotsite-pollers@.service": "pollers",
    }
    commands = procfile()
    for unit, kind in expected.items():
        text = (UNITS / unit).read_text()
        (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, re.M)
        (workdir,) = re.findall(r"^WorkingDirectory=(.*)$", text, re.M)
        assert exec_start.removeprefix(f"{workdir}/") == commands[kind].replace(
            "${PORT:-8000}", "8000"
        )


@deployment[0]
@deployment[1]
@deployment[2]
def test_two_clusters_two_pollers_and_webhooks_run_each_task_once_within_the_budget(
    connection, pilot, tmp_path
):
    project = pilot.add_project(pilot.workspace_gid, "Requests")
    gids = [
        pilot.add_task(pilot.workspace_gid, f"task {i}", projects=[project]) for i in range(TASKS)
    ]
    connection.poll_interval = 1  # every poller polls in turn, racing the webhook path
    connection.breaker_claims_per_hour = 100_000  # 500 claims in minutes are the point here
    connection.save()
    jobs.ensure_schedules()
    started_log = tmp_path / "started.txt"
    port = free_port()
    env = procs.child_env(
        pilot.base_url,
        REDIS_URL=REDIS_URL,
        # A queue of this test's own in the shared Redis.
        Q_CLUSTER_NAME=f"scaleout-{uuid.uuid4().hex[:12]}",
        Q_WORKERS="3",
        ASANA_REQUESTS_PER_MINUTE=str(BUDGET),
        ALLOWED_HOSTS="127.0.0.1",
        PORT=str(port),
        # Short leases, so the killed cluster's work is recovered within seconds.
        PILOT_RUN_LEASE_SECONDS="6",
        PILOT_CLAIM_LEASE_SECONDS="10",
        PILOT_HEARTBEAT_SECONDS="1",
        # Each execution notes its task and the process group that ran it (a cluster's
        # workers share their cluster's group), then takes a moment, so the kill lands
        # while some are running.
        PILOT_EXECUTOR_COMMAND=(
            f'echo "$PILOT_TASK_GID $(ps -o pgid= -p $PPID | tr -d " ")" >> {started_log}; '
            "sleep 0.2"
        ),
    )
    log = tmp_path / "processes.log"
    web = start("web", env, log)
    running = {"web": web}
    stop_feeding = threading.Event()
    try:
        procs.wait_for(lambda: _answers(port), timeout=60, what="gunicorn")
        registration = register_webhook(connection, project, f"http://127.0.0.1:{port}")
        first_request = len(pilot.request_times)
        running |= {
            "cluster A": start("cluster", env, log),
            "cluster B": start("cluster", env, log),
            "pollers A": start("pollers", env, log),
            "pollers B": start("pollers", env, log),
        }
        procs.wait_for(lambda: _tags_cached(connection), what="the first poll")
        pilot_tag = tag_gid(connection, "pilot")

        def feed() -> None:
            # Tags as people would, a batch at a time, each batch announced to the site.
            for start_at in range(0, TASKS, BATCH):
                if stop_feeding.is_set():
                    return
                batch = gids[start_at : start_at + BATCH]
                for gid in batch:
                    pilot.tag_task(gid, pilot_tag)
                events = [pilot.event(gid, "added", parent_gid=pilot_tag) for gid in batch]
                pilot.deliver(registration.webhook_gid, events)
                time.sleep(0.2)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()

        victim = running["cluster A"]
        procs.wait_for(
            lambda: (
                _groups_started(started_log)[victim.pid] >= 5
                and ProcessedTask.objects.filter(state=State.DONE).count() >= 100
            ),
            timeout=240,
            what="cluster A at work and 100 tasks done",
        )
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at_work = set(
            ProcessedTask.objects.filter(state__in=(State.CLAIMED, State.RUNNING)).values_list(
                "task_gid", flat=True
            )
        )
        feeder.join(timeout=120)
        procs.wait_for(
            lambda: (
                ProcessedTask.objects.filter(state__in=(State.DONE, State.FAILED)).count() == TASKS
            ),
            timeout=300,
            what=f"all {TASKS} tasks finished",
        )
    finally:
        stop_feeding.set()
        for proc in running.values():
            procs.stop(proc)

    started = [line.split() for line in started_log.read_text().splitlines()]
    runs = Counter(gid for gid, _ in started)
    failed = ProcessedTask.objects.filter(state=State.FAILED)
    interrupted = {p.task_gid for p in failed if p.error == INTERRUPTED}
    # None ran twice; every task ran, except one the kill cut short before its command
    # started (reported interrupted, like one cut short while running).
    assert max(runs.values()) == 1
    assert set(runs) | interrupted == set(gids)
    assert set(
        ProcessedTask.objects.filter(state=State.DONE).values_list("task_gid", flat=True)
    ) <= set(runs)
    # All four workers did work (the web server runs no task; it queues deliveries).
    groups = Counter(int(group) for _, group in started)
    workers = {name: proc.pid for name, proc in running.items() if name != "web"}
    assert {name: groups[pid] > 0 for name, pid in workers.items()} == dict.fromkeys(workers, True)
    # The killed cluster's work was recovered: what it held was finished by the others
    # (reported, and only a run cut short is reported interrupted).
    assert interrupted == {p.task_gid for p in failed} and interrupted <= killed_at_work
    by_gid = {gid: group for gid, group in started}
    # A command that started as its cluster was being killed finds its parent already gone, and
    # `ps` then reports process group 0: that run, too, was the killed cluster's.
    killed_groups = {str(workers["cluster A"]), "0"}
    assert {by_gid[gid] for gid in interrupted if gid in by_gid} <= killed_groups
    # Reported once: one start comment and one outcome comment, one outcome tag.
    done_tag, failed_tag = tag_gid(connection, "pilot-done"), tag_gid(connection, "pilot-failed")
    for gid in gids:
        comments = [c["text"] for c in pilot.comments(gid)]
        outcomes = [text for text in comments if text != STARTED_TEXT]
        # A run cut short before it said so has no start comment; none has two.
        assert comments.count(STARTED_TEXT) <= 1 and len(outcomes) == 1, (gid, comments)
        assert comments[0] == STARTED_TEXT or gid in interrupted, (gid, comments)
        tags = [t["gid"] for t in pilot.task(gid)["tags"]]
        assert tags.count(done_tag) + tags.count(failed_tag) == 1, (gid, tags)
    # The whole deployment kept to the one budget of the token.
    times = pilot.request_times[first_request:]
    assert len(times) > BUDGET  # it had to hold back
    assert max_in_a_minute(times) <= BUDGET


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _tags_cached(connection) -> bool:
    connection.refresh_from_db()
    return bool(connection.tag_gids)


def _groups_started(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(int(line.split()[1]) for line in path.read_text().splitlines() if " " in line)
