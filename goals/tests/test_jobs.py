"""The django-q2 schedule and the job it runs."""

import datetime

import pytest
from django.utils import timezone
from django_q.models import Schedule

from goals.jobs import SCHEDULE_NAME, ensure_schedules, sync_all_due, sync_connection
from goals.models import GoalSync
from integrations.models import AsanaConnection


@pytest.fixture(autouse=True)
def _fast_client(settings):
    settings.ASANA_REQUESTS_PER_MINUTE = 100_000
    settings.ASANA_MAX_RETRIES = 0


def test_the_schedule_exists_after_migrate(db):
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == "goals.jobs.sync_all_due"


def test_ensure_schedules_is_idempotent(db):
    ensure_schedules()
    ensure_schedules()

    assert Schedule.objects.filter(name=SCHEDULE_NAME).count() == 1


def test_a_connection_never_synced_is_due(fake_asana, connection, hire):
    hire("Ada")

    sync_all_due()

    run = GoalSync.objects.get()
    assert (run.source, run.state) == ("schedule", GoalSync.State.SUCCEEDED)


def test_a_connection_synced_within_its_interval_is_not_due(fake_asana, connection):
    GoalSync.objects.create(connection=connection, source="command", state="succeeded")

    assert sync_all_due() == "no connection due"
    assert GoalSync.objects.count() == 1


def test_the_interval_is_per_connection(fake_asana, connection, hire):
    hire("Ada")
    AsanaConnection.objects.filter(pk=connection.pk).update(goals_sync_interval=3600)
    old = GoalSync.objects.create(connection=connection, source="schedule", state="succeeded")
    GoalSync.objects.filter(pk=old.pk).update(
        started_at=timezone.now() - datetime.timedelta(hours=2)
    )

    sync_all_due()

    assert GoalSync.objects.count() == 2


def test_the_job_reports_a_sync_already_running(fake_asana, connection):
    GoalSync.objects.create(connection=connection, source="admin")

    assert "already running" in sync_connection(connection.pk)
