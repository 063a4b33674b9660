"""Heartbeats of the long-running processes, and what the integrations card says about them.

The processes are real: `runpollers`, a django-q2 cluster and gunicorn serving
`pilotsite.wsgi`, started against the test database with a heartbeat every half second."""

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import AsanaConnection
from integrations.tests import procs
from pilotsite.liveness import NO_CLUSTER, NO_WORKER, PRUNE_AFTER, Kind, beat, liveness
from pilotsite.models import Heartbeat

TAB = "/admin/?tab=integrations"
FAST = {"PILOT_HEARTBEAT_SECONDS": "0.5", "PILOT_EXECUTOR_COMMAND": "true"}


@pytest.fixture
def connection(db) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid="1234", workspace_name="Acme", access_token="1/123:" + "a" * 32
    )


def rows(kind: str, pids: set[int] | None = None) -> list[Heartbeat]:
    found = Heartbeat.objects.filter(kind=kind, host=socket.gethostname())
    return [r for r in found if pids is None or r.pid in pids]


def children_of(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        direct = {int(p) for p in f.read().split()}
    return direct | {c for d in direct for c in children_of(d)}


# -- real processes ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_runpollers_beats_while_it_runs_and_says_goodbye_when_stopped(tmp_path):
    proc = procs.start(
        ["runpollers"], procs.child_env("http://127.0.0.1:9/api/1.0", **FAST), tmp_path / "log"
    )
    try:
        first = procs.wait_for(lambda: rows(Kind.POLLERS, {proc.pid}), what="a heartbeat")[0]
        procs.wait_for(
            lambda: Heartbeat.objects.get(pk=first.pk).last_seen > first.last_seen,
            what="the next beat",
        )
        assert liveness().pollers_alive
    finally:
        procs.stop(proc, signal.SIGTERM)
    assert not rows(Kind.POLLERS, {proc.pid})


@pytest.mark.django_db(transaction=True)
def test_each_q_cluster_worker_beats_and_a_stopped_cluster_leaves_none(tmp_path):
    env = procs.child_env("http://127.0.0.1:9/api/1.0", Q_WORKERS="2", **FAST)
    proc = procs.start(["qcluster"], env, tmp_path / "log")
    try:
        procs.wait_for(
            lambda: len(rows(Kind.QCLUSTER, children_of(proc.pid))) == 2,
            what="a heartbeat from each of the 2 workers",
        )
        assert liveness().cluster_alive
    finally:
        procs.stop(proc, signal.SIGTERM)
    assert not rows(Kind.QCLUSTER)


@pytest.mark.django_db(transaction=True)
def test_each_web_server_process_beats(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = procs.child_env("http://127.0.0.1:9/api/1.0", **FAST)
    with (tmp_path / "log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "pilotsite.wsgi", "--bind", f"127.0.0.1:{port}"],
            cwd=os.path.dirname(procs.MANAGE),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        procs.wait_for(
            lambda: rows(Kind.WEB, children_of(proc.pid)), timeout=60, what="the worker's beat"
        )
    finally:
        procs.stop(proc, signal.SIGTERM)
    assert not rows(Kind.WEB)


# -- the facts -----------------------------------------------------------------------------


def test_a_process_silent_for_three_beats_counts_as_stopped(db, settings):
    settings.PILOT_HEARTBEAT_SECONDS = 10
    now = timezone.now()
    beat(Kind.QCLUSTER, started_at=now, now=now - timedelta(seconds=31))

    facts = liveness(now)

    assert not facts.cluster_alive
    assert facts.processes[0].last_seen_ago == "31 s ago"
    assert facts.warnings == [NO_WORKER]


def test_rows_silent_for_ten_minutes_are_pruned_by_the_next_beat(db):
    now = timezone.now()
    Heartbeat.objects.create(
        kind=Kind.WEB, host="gone", pid=1, started_at=now, last_seen=now - PRUNE_AFTER * 2
    )

    beat(Kind.POLLERS, started_at=now, now=now)

    assert list(Heartbeat.objects.values_list("kind", flat=True)) == [Kind.POLLERS]


def test_pollers_without_a_cluster_warn_that_queued_jobs_wait(db):
    beat(Kind.POLLERS, started_at=timezone.now())

    assert liveness().warnings == [NO_CLUSTER]


# -- the card ------------------------------------------------------------------------------


def test_the_card_says_plainly_when_no_worker_is_running(admin_client, connection):
    page = admin_client.get(TAB).content.decode()

    assert "no worker is running: tagged tasks will not be picked up" in page
    assert "<code>" not in NO_WORKER  # the sentence is shown as written


@pytest.mark.parametrize("sentence", [NO_WORKER, NO_CLUSTER])
def test_the_no_worker_sentences_name_the_commands_without_markdown(sentence):
    # They are shown as written, in HTML and in the terminal: backticks would show as such.
    assert "`" not in sentence
    assert "“make run” (or “manage.py qcluster”)" in sentence


def test_the_card_shows_each_process_with_when_it_was_last_seen(admin_client, connection):
    beat(Kind.QCLUSTER, started_at=timezone.now(), detail="pilotsite worker")

    page = admin_client.get(TAB).content.decode()

    assert "no worker is running" not in page
    assert "q cluster<br><small>pilotsite worker</small>" in page
    assert re.search(r"running</span>, last seen \d+ s ago", page)


def _polled(connection: AsanaConnection, seconds_ago: float) -> None:
    connection.last_poll_at = timezone.now() - timedelta(seconds=seconds_ago)
    connection.last_poll_result = "nothing new"
    connection.save()


def test_last_poll_older_than_twice_the_interval_is_marked_overdue(admin_client, connection):
    beat(Kind.POLLERS, started_at=timezone.now())
    _polled(connection, 2 * connection.poll_interval + 5)

    assert "pilot-overdue" in admin_client.get(TAB).content.decode()


def test_last_poll_within_twice_the_interval_is_not_overdue(admin_client, connection):
    beat(Kind.POLLERS, started_at=timezone.now())
    _polled(connection, 2 * connection.poll_interval - 5)

    assert "pilot-overdue" not in admin_client.get(TAB).content.decode()


def test_with_only_a_cluster_polling_overdue_counts_from_its_one_minute_schedule(
    admin_client, connection
):
    beat(Kind.QCLUSTER, started_at=timezone.now())
    _polled(connection, 90)  # past 2 × 30 s, within 2 × the schedule's minute

    assert "pilot-overdue" not in admin_client.get(TAB).content.decode()


def test_the_cards_moving_parts_are_served_alone_for_refreshing(admin_client, connection):
    fragment = admin_client.get(reverse("admin:integrations:live", args=[connection.pk]))

    html = fragment.content.decode()
    assert html.lstrip().startswith(f'<div class="pilot-live" id="live-{connection.pk}"')
    assert 'data-live-seconds="15"' in html
    assert "Task pipeline" in html and "Workers" in html and "<html" not in html


def test_the_moving_parts_are_refused_to_staff_who_may_not_view_connections(
    client, connection, outsider_user
):
    client.force_login(outsider_user)

    url = reverse("admin:integrations:live", args=[connection.pk])
    assert client.get(url).status_code == 403


def test_the_moving_parts_send_who_is_not_staff_to_the_sign_in(client, connection, employee_user):
    client.force_login(employee_user)

    url = reverse("admin:integrations:live", args=[connection.pk])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"/admin/login/?next={url}"


def test_before_any_connection_the_tab_already_says_what_runs(admin_client):
    page = admin_client.get(TAB).content.decode()

    assert "No Asana workspace is connected yet." in page
    assert "no worker is running: tagged tasks will not be picked up" in page
