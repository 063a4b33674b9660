"""Safety rails: each trigger pauses a connection (nothing more is claimed, by polling or by
a webhook; what runs finishes and reports), a paused connection probes Asana after its
cool-down and resumes by itself (errors only), and a person resumes it from the card.

Everything goes over real HTTP to the fake Asana; failing runs are real executor
subprocesses. Time passing is a stored timestamp moved back, never a wait."""

import contextlib
import io
import secrets
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import timedelta

import pytest
import redis
from django import db
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.asana import budget
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaServerError
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog, ProcessedTask, Run
from integrations.pipeline import breaker, claims, dispatch, recovery, runs
from integrations.pipeline.cycle import poll_then_claim
from integrations.pipeline.stop import live_run, request_stop
from integrations.tests import procs
from integrations.tests.pipeline_fixtures import interval_passes, process, tagged
from integrations.tests.test_shared_budget import REDIS_URL

pytestmark = pytest.mark.django_db
State = ProcessedTask.State
Kind = AsanaConnection.PauseKind
# A real subprocess: fails with a message, unless the task's title starts with "ok".
FAILS_UNLESS_OK = (
    'case "$PILOT_TASK_TITLE" in ok*) echo \'{"summary": "fine"}\';; '
    "*) echo 'the build is red' >&2; exit 3;; esac"
)


def rails(connection: AsanaConnection, **thresholds: int) -> AsanaConnection:
    AsanaConnection.objects.filter(pk=connection.pk).update(**thresholds)
    connection.refresh_from_db()
    return connection


def turn(connection: AsanaConnection, handed: list[ProcessedTask]):
    """One poll-then-claim turn with room for everything, as a runner takes it."""
    connection.refresh_from_db()
    return poll_then_claim(
        connection,
        runner=ProcessedTask.Runner.IN_PROCESS,
        pending=deque(),
        names={},
        has_room=lambda: True,
        hand_over=handed.append,
    )


def rows(action: Action) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("pk"))


def requests_to(fake, path: str) -> int:
    return sum(1 for _, p, _ in fake.requests if p == path)


def earlier(connection: AsanaConnection, field: str, seconds: int) -> None:
    """Time passes: the stored `field` moves back by `seconds`."""
    AsanaConnection.objects.filter(pk=connection.pk).update(
        **{field: F(field) - timedelta(seconds=seconds)}
    )
    connection.refresh_from_db()


# -- Asana's errors ------------------------------------------------------------------------


def test_asana_errors_over_the_share_pause_polling_and_webhook_claims(
    connection, pilot, executor, settings
):
    settings.ASANA_MAX_RETRIES = 0
    rails(connection, breaker_min_requests=4, breaker_error_percent=50)
    gid = tagged(pilot, "Tagged during the outage")
    pilot.inject("503", times=4)
    handed: list[ProcessedTask] = []

    for _ in range(3):  # one failed request each: fewer than 4 requests never pause
        turn(connection, handed)
        interval_passes(connection)
        assert connection.paused_at is None
    turn(connection, handed)

    connection.refresh_from_db()
    assert connection.paused_at is not None and connection.pause_kind == Kind.ERRORS
    assert "4 of the last 4 requests" in connection.pause_reason
    assert [r.actor_label for r in rows(Action.AUTOMATION_PAUSED)] == ["safety rails"]
    # Asana is healthy again, but a paused connection is neither polled nor claims.
    interval_passes(connection)
    sent = len(pilot.requests)
    assert turn(connection, handed).polled is None and len(pilot.requests) == sent
    with pytest.raises(breaker.Paused):
        dispatch.dispatch_task(connection, gid, source="webhook", runner=handed.append)
    assert handed == [] and not ProcessedTask.objects.exists()


def test_two_errors_in_three_requests_are_too_few_to_pause(connection, pilot, settings):
    settings.ASANA_MAX_RETRIES = 0
    pilot.inject("503", times=2, path=r"^/users/me$")
    with client_for(connection) as client:
        for _ in range(3):
            with contextlib.suppress(AsanaServerError):
                client.me()

    assert budget.store().answers(budget.answers_key(connection.pk), 0) == (3, 2)
    assert not breaker.check_errors(connection)


def test_a_429_is_counted_as_an_answer_not_as_an_error(connection, pilot, settings):
    settings.ASANA_MAX_RETRIES = 1
    pilot.inject("429", retry_after=0, path=r"^/users/me$")
    with client_for(connection) as client:
        client.me()

    assert budget.store().answers(budget.answers_key(connection.pk), 0) == (2, 0)


def test_errors_counted_before_a_resume_never_pause_again(connection, pilot, settings):
    settings.ASANA_MAX_RETRIES = 0
    rails(connection, breaker_min_requests=1)
    pilot.inject("503", path=r"^/users/me$")
    with client_for(connection) as client, pytest.raises(AsanaServerError):
        client.me()
    assert breaker.check_errors(connection)
    # Answers are counted in buckets that start after the resume: the next bucket.
    assert breaker.resume(connection, how="test", now=timezone.now())

    assert not breaker.check_errors(connection, now=timezone.now())


# -- the probe -----------------------------------------------------------------------------


def test_a_connection_paused_for_errors_probes_after_the_cool_down_and_resumes(
    connection, pilot, settings
):
    settings.ASANA_MAX_RETRIES = 0
    rails(connection, breaker_cooldown=60)
    gid = tagged(pilot, "Waiting for Asana")
    assert breaker.pause(connection, Kind.ERRORS, "Asana answered errors")
    pilot.inject("503", times=1, path=r"^/users/me$")
    handed: list[ProcessedTask] = []

    turn(connection, handed)  # within the cool-down: no request at all
    assert len(pilot.requests) == 0

    earlier(connection, "paused_at", 60)
    turn(connection, handed)  # the probe fails: still paused, and said so on the card
    turn(connection, handed)  # the next probe waits for another cool-down
    connection.refresh_from_db()
    assert requests_to(pilot, "/users/me") == 1 and connection.paused_at is not None
    assert connection.last_poll_result.startswith("paused for Asana's errors; the probe failed")

    earlier(connection, "probed_at", 60)
    turn(connection, handed)  # the probe succeeds: resumed by the system
    connection.refresh_from_db()
    assert requests_to(pilot, "/users/me") == 2 and connection.paused_at is None
    [resumed] = rows(Action.AUTOMATION_RESUMED)
    assert resumed.actor_label == "system" and "a probe of Asana succeeded" in resumed.detail

    turn(connection, handed)
    assert [p.task_gid for p in handed] == [gid]


@pytest.mark.parametrize("kind", [Kind.FAILURES, Kind.CLAIMS])
def test_other_pauses_never_probe_and_stay_until_resumed(connection, pilot, kind):
    rails(connection, breaker_cooldown=60)
    breaker.pause(connection, kind, "for a test")
    earlier(connection, "paused_at", 3600)

    turn(connection, [])

    connection.refresh_from_db()
    assert requests_to(pilot, "/users/me") == 0 and connection.paused_at is not None


# -- failed runs (real executor subprocesses) ----------------------------------------------


def test_failed_runs_in_a_row_pause_and_a_done_run_breaks_the_streak(connection, pilot, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", FAILS_UNLESS_OK
    rails(connection, breaker_failures=2)

    assert process(connection, tagged(pilot, "fails first")).state == State.FAILED
    assert process(connection, tagged(pilot, "ok this one")).state == State.DONE
    assert process(connection, tagged(pilot, "fails again")).state == State.FAILED
    connection.refresh_from_db()
    assert connection.paused_at is None
    assert process(connection, tagged(pilot, "fails twice in a row")).state == State.FAILED

    connection.refresh_from_db()
    assert connection.pause_kind == Kind.FAILURES
    assert connection.pause_reason == "the executor failed 2 runs in a row"
    with pytest.raises(breaker.Paused):
        claims.claim(connection, tagged(pilot, "not claimed"), source="poll")


def stops_itself(task, progress):
    """A Python executor whose run is asked to stop while it works (as a person would)."""
    pt = ProcessedTask.objects.get(task_gid=task["gid"])
    run = live_run(pt)
    assert run is not None
    request_stop(run, by="a test")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress("working")  # raises once the stop request has reached the execution
        time.sleep(0.02)
    return {"summary": "never stopped"}


@pytest.mark.django_db(transaction=True)
def test_a_stopped_run_is_not_a_failure_in_the_streak(connection, pilot, settings):
    settings.PILOT_STOP_CHECK_SECONDS = 0.02
    rails(connection, breaker_failures=2)
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", FAILS_UNLESS_OK
    process(connection, tagged(pilot, "fails"))
    settings.PILOT_EXECUTOR = "integrations.tests.test_breaker:stops_itself"
    assert process(connection, tagged(pilot, "stopped")).state == State.STOPPED
    connection.refresh_from_db()
    assert connection.paused_at is None

    settings.PILOT_EXECUTOR = ""
    process(connection, tagged(pilot, "fails after the stop"))

    connection.refresh_from_db()
    assert connection.pause_kind == Kind.FAILURES


# -- claims in an hour ---------------------------------------------------------------------


def test_more_claims_in_an_hour_than_allowed_pause_and_claimed_runs_finish(
    connection, pilot, executor
):
    rails(connection, breaker_claims_per_hour=2)
    gids = [tagged(pilot, f"bulk {n}") for n in range(4)]
    handed: list[ProcessedTask] = []

    done = turn(connection, handed)

    connection.refresh_from_db()
    assert done.claimed == 2 and ProcessedTask.objects.count() == 2
    assert connection.pause_kind == Kind.CLAIMS
    assert connection.pause_reason.startswith("2 tasks were claimed within the last hour")
    # In flight when the pause came: they still run and report.
    for claimed in handed:
        finished = runs.run_claimed(claimed.pk, claimed.claimed_by)
        assert finished is not None and finished.state == State.DONE
    assert sorted(executor) == sorted(gids[:2])
    with pytest.raises(breaker.Paused):
        dispatch.dispatch_task(connection, gids[3], source="webhook", runner=handed.append)


def test_claims_older_than_an_hour_do_not_count(connection, pilot, executor):
    rails(connection, breaker_claims_per_hour=1)
    process(connection, tagged(pilot, "an hour ago"))
    ProcessedTask.objects.update(claimed_at=F("claimed_at") - timedelta(hours=1, seconds=1))

    assert process(connection, tagged(pilot, "now")).state == State.DONE


# -- pausing and resuming ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_several_claimants_tripping_at_once_pause_once(connection):
    """Four threads (each its own database connection) trip the rail at the same moment."""
    start = threading.Barrier(4)
    won: list[bool] = []

    def trip(kind: str) -> None:
        mine = AsanaConnection.objects.get(pk=connection.pk)
        start.wait(timeout=30)
        try:
            won.append(breaker.pause(mine, kind, f"tripped by {kind}"))
        finally:
            db.connection.close()

    threads = [threading.Thread(target=trip, args=(kind,)) for kind in [*Kind.values, "claims"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(won) == [False, False, False, True]
    connection.refresh_from_db()
    [row] = rows(Action.AUTOMATION_PAUSED)
    assert row.detail == connection.pause_reason == f"tripped by {connection.pause_kind}"


def resume_url(connection: AsanaConnection) -> str:
    return reverse("admin:integrations:resume", args=[connection.pk])


def test_resume_from_the_card_is_audited_and_counts_start_again(
    connection, pilot, settings, admin_client, admin_user
):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", FAILS_UNLESS_OK
    rails(connection, breaker_failures=1)
    process(connection, tagged(pilot, "fails"))
    connection.refresh_from_db()
    assert connection.pause_kind == Kind.FAILURES

    assert admin_client.post(resume_url(connection)).status_code == 302

    connection.refresh_from_db()
    assert connection.paused_at is None and connection.resumed_at is not None
    [row] = rows(Action.AUTOMATION_RESUMED)
    assert row.actor == admin_user and "the executor failed 1 run in a row" in row.detail
    # The failure before the resume is not counted again: the next task is claimed.
    assert claims.claim(connection, tagged(pilot, "ok after the resume"), source="poll")


def test_retry_on_a_paused_connection_says_the_task_waits_for_the_resume(
    connection, pilot, settings, admin_client
):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", FAILS_UNLESS_OK
    rails(connection, breaker_failures=1)
    failed = process(connection, tagged(pilot, "fails"))

    response = admin_client.post(reverse("admin:integrations:retry", args=[failed.pk]), follow=True)

    assert "will run again once automation resumes (paused: the executor failed 1 run" in (
        response.content.decode()
    )


@pytest.mark.parametrize("persona", ["manager_user", "outsider_user"])
def test_resume_needs_the_permission_to_change_connections(connection, persona, request):
    breaker.pause(connection, Kind.CLAIMS, "bulk tagged")
    client = Client()
    client.force_login(request.getfixturevalue(persona))

    assert client.post(resume_url(connection)).status_code == 403

    connection.refresh_from_db()
    assert connection.paused_at is not None and not rows(Action.AUTOMATION_RESUMED)


def test_resume_refuses_a_post_without_the_csrf_token(connection, admin_user):
    breaker.pause(connection, Kind.CLAIMS, "bulk tagged")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.post(resume_url(connection)).status_code == 403
    connection.refresh_from_db()
    assert connection.paused_at is not None


def test_resuming_a_connection_that_is_not_paused_says_so(connection, admin_client):
    response = admin_client.post(resume_url(connection), follow=True)

    assert "was not paused" in response.content.decode()
    assert not rows(Action.AUTOMATION_RESUMED)


def test_recovery_still_reports_a_run_interrupted_while_paused(connection, pilot, executor):
    processed = claims.claim(connection, tagged(pilot, "in flight"), source="poll")
    assert processed is not None
    ProcessedTask.objects.filter(pk=processed.pk).update(
        state=State.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    Run.objects.create(processed_task=processed, number=1, trigger=Run.Trigger.POLL)
    breaker.pause(connection, Kind.CLAIMS, "bulk tagged")

    assert recovery.recover_stale() == 1

    assert ProcessedTask.objects.get(pk=processed.pk).state == State.FAILED


CHILD_REQUEST = """
import django
django.setup()
from integrations.asana.client import client_for
from integrations.asana.errors import AsanaError
from integrations.models import AsanaConnection
try:
    client_for(AsanaConnection.objects.get(pk={pk})).me()
except AsanaError:
    pass
"""


@pytest.mark.parametrize("store", ["database", "redis"])
@pytest.mark.django_db(transaction=True)
def test_answers_are_counted_across_processes(connection, pilot, settings, store):
    """A child process's answers count for the connection in this process, whichever
    store the deployment shares (the SQLite budget file or PostgreSQL, or Redis)."""
    extra = {"ASANA_MAX_RETRIES": "0"}
    if store == "redis":
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.RedisError:
            pytest.skip("Redis is not running at 127.0.0.1:6379")
        # Redis is shared by every test run on the machine: a cluster name of its own.
        name = f"breaker-test-{secrets.token_hex(6)}"
        settings.REDIS_URL, settings.Q_CLUSTER = REDIS_URL, {**settings.Q_CLUSTER, "name": name}
        extra.update(REDIS_URL=REDIS_URL, Q_CLUSTER_NAME=name)
    pilot.inject("503", times=1, path=r"^/users/me$")
    env = procs.child_env(pilot.base_url, **extra)
    for _ in range(2):
        code = CHILD_REQUEST.format(pk=connection.pk)
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=settings.BASE_DIR)

    assert budget.store().answers(budget.answers_key(connection.pk), 0) == (2, 1)


# -- the card, the thresholds and `asana status` --------------------------------------------


def tab(client) -> str:
    return client.get(reverse("admin:index") + "?tab=integrations").content.decode()


def test_the_card_shows_the_pause_with_its_reason_and_since_when(connection, admin_client):
    breaker.pause(connection, Kind.CLAIMS, "51 tasks were claimed within the last hour")
    since = timezone.localtime(connection.paused_at).strftime("%Y-%m-%d %H:%M:%S")

    page = tab(admin_client)

    assert 'class="pilot-paused"' in page and f'since <span class="pilot-nowrap">{since}' in page
    assert "51 tasks were claimed within the last hour" in page
    assert reverse("admin:integrations:resume", args=[connection.pk]) in page


def test_a_paused_connections_badge_says_paused_in_red_not_connected(connection, admin_client):
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_checked_at=timezone.now(), last_error=""
    )
    assert '<span class="pilot-status pilot-status-ok"' in tab(admin_client)
    breaker.pause(connection, Kind.FAILURES, "the executor failed 3 runs in a row")

    page = tab(admin_client)

    assert 'pilot-status-ok"' not in page
    assert '<span class="pilot-status pilot-status-error"' in page
    assert ">paused</span>" in page and ">connected</span>" not in page


def test_while_paused_the_last_poll_says_its_new_tasks_wait_for_resume(
    connection, pilot, admin_client
):
    breaker.pause(connection, Kind.FAILURES, "the executor failed 3 runs in a row")
    tagged(pilot, "tagged while paused")
    handed: list[ProcessedTask] = []

    turn(connection, handed)

    connection.refresh_from_db()
    assert not handed and not ProcessedTask.objects.exists()
    assert connection.last_poll_result.endswith("1 new — waiting for Resume")
    assert "1 new — waiting for Resume</p>" in tab(admin_client)
    breaker.resume(connection, how="a test")
    interval_passes(connection)
    turn(connection, handed)
    connection.refresh_from_db()
    assert len(handed) == 1 and "Resume" not in connection.last_poll_result


def test_the_card_offers_resume_only_to_who_may_change_connections(connection, outsider_user):
    outsider_user.user_permissions.add(Permission.objects.get(codename="view_asanaconnection"))
    breaker.pause(connection, Kind.CLAIMS, "bulk tagged")
    client = Client()
    client.force_login(outsider_user)

    page = tab(client)

    assert "Automation paused" in page
    assert reverse("admin:integrations:resume", args=[connection.pk]) not in page


def rails_post(client, connection, **values):
    prefix = f"r{connection.pk}-"
    data = {
        name: str(getattr(connection, name))
        for name in AsanaConnection.SETTINGS
        if name.startswith("breaker_")
    }
    data.update({name: str(value) for name, value in values.items()})
    return client.post(
        reverse("admin:integrations:rails", args=[connection.pk]),
        {prefix + name: value for name, value in data.items()},
    )


def test_the_thresholds_are_saved_from_the_card_and_audited(connection, admin_client):
    assert rails_post(admin_client, connection, breaker_failures=3).status_code == 302

    connection.refresh_from_db()
    assert connection.breaker_failures == 3
    [row] = rows(Action.CONNECTION_SETTINGS)
    assert row.detail == "breaker_failures = 3"


def test_a_threshold_out_of_bounds_is_refused_with_the_rule_and_nothing_saved(
    connection, admin_client
):
    rails_post(admin_client, connection, breaker_failures=2, breaker_error_percent=101)

    connection.refresh_from_db()
    assert (connection.breaker_failures, connection.breaker_error_percent) == (5, 50)
    page = tab(admin_client)
    assert "The share of Asana errors (%) must be from 1 to 100." in page
    assert not rows(Action.CONNECTION_SETTINGS)


def test_the_thresholds_need_the_permission_to_change_connections(connection, manager_user):
    client = Client()
    client.force_login(manager_user)

    assert rails_post(client, connection, breaker_failures=1).status_code == 403


def test_asana_status_says_a_connection_is_paused_and_why(connection):
    breaker.pause(connection, Kind.FAILURES, "the executor failed 5 runs in a row")
    out = io.StringIO()

    call_command("asana", "status", stdout=out)

    assert "automation: PAUSED since" in out.getvalue()
    assert "the executor failed 5 runs in a row (resume it on the card)" in out.getvalue()
