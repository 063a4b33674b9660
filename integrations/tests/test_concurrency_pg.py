# ruff: noqa: F811 - the fixtures imported from pipeline_fixtures are parameters here
"""Two `runpollers` processes and a django-q2 cluster on one workspace, on PostgreSQL:
200 tagged tasks, each executed exactly once."""

import os
from collections import Counter

import pytest

from integrations import jobs
from integrations.models import ProcessedTask
from integrations.reporter import STARTED_TEXT
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import (  # noqa: F401 - fixtures
    comment_texts,
    connection,
    fast_client,
    pilot,
    tagged,
)

State = ProcessedTask.State
TASKS = 200

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs DATABASE_URL pointing at PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_two_pollers_and_a_cluster_execute_each_task_exactly_once(connection, pilot, tmp_path):
    gids = [tagged(pilot, f"task {i}") for i in range(TASKS)]
    connection.poll_interval = 5
    connection.save()
    jobs.ensure_schedules()
    executed = tmp_path / "executed.txt"
    # Lines this short are appended atomically, whichever process writes them.
    env = procs.child_env(
        pilot.base_url,
        PILOT_EXECUTOR_COMMAND=f'echo "$PILOT_TASK_GID" >> {executed}',
        Q_WORKERS="2",
    )
    log = tmp_path / "processes.log"
    running = [procs.start(["qcluster"], env, log)]
    try:
        # The cluster goes first so that it surely takes part.
        procs.wait_for(
            lambda: ProcessedTask.objects.filter(claimed_by__startswith="q@").exists(),
            timeout=120,
            what="the cluster's first claims",
        )
        running += [procs.start(["runpollers", "--workers", "4"], env, log) for _ in range(2)]
        procs.wait_for(
            lambda: ProcessedTask.objects.filter(state=State.DONE).count() == TASKS,
            timeout=300,
            what=f"{TASKS} tasks done",
        )
    finally:
        for proc in running:
            procs.stop(proc)

    lines = executed.read_text().split()
    assert len(lines) == TASKS
    assert sorted(lines) == sorted(gids)
    assert not ProcessedTask.objects.exclude(state=State.DONE).exists()
    owners = Counter(p.claimed_by.split("@")[0] for p in ProcessedTask.objects.all())
    assert owners["q"] >= 1 and owners["runpollers"] >= 1
    for gid in gids:
        assert comment_texts(pilot, gid) == [STARTED_TEXT, "Successfully completed"]
