"""Two `runpollers` processes and a django-q2 cluster on one workspace, on PostgreSQL:
200 tagged tasks, each executed exactly once."""

import os
from collections import Counter

import pytest
from django_q.tasks import async_task

from integrations.models import ProcessedTask
from integrations.pipeline import jobs
from integrations.pipeline.report import STARTED_TEXT
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import comment_texts, tagged

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
    # All pollers share one poll slot per interval (below the 5 s a person may choose), so
    # a short one has the runpollers processes poll in turn and race for the same tasks.
    connection.poll_interval = 1
    connection.breaker_claims_per_hour = 100_000  # 200 claims in minutes are the point here
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
        # The cluster goes first so that it surely takes part. Its scheduler first looks at
        # the schedules 30 s after it starts: the scheduled job is queued now instead.
        async_task("integrations.pipeline.jobs.poll_all")
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
    # A claim token is owner@host:pid:nonce: every one of the three processes took part.
    processes = Counter(p.claimed_by.split(":")[1] for p in ProcessedTask.objects.all())
    assert len(processes) == 3
    for gid in gids:
        assert comment_texts(pilot, gid) == [
            STARTED_TEXT,
            "Successfully completed: no summary was given",
        ]
