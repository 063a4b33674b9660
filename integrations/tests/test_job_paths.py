"""Jobs are named by their function objects; schedules and tasks queued under a job's dotted
path of an earlier release keep working after an upgrade (for one release)."""

import pydoc
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from goals.jobs import sync_all_due, sync_connection
from integrations.pipeline.jobs import decided_job, poll_all, run_claimed_job
from integrations.webhooks.delivery import DeliveryOutcome
from integrations.webhooks.jobs import WebhookChecks, check_all_webhooks, handle_delivery
from pilotsite.schedules import is_job_function, job_functions, job_path

pytestmark = pytest.mark.django_db

# Every dotted path a schedule or a queued task may name from the release before packages.
FORMER = {
    "integrations.jobs.poll_all": poll_all,
    "integrations.jobs.run_claimed_job": run_claimed_job,
    "integrations.webhook_jobs.check_all_webhooks": check_all_webhooks,
    "integrations.webhooks.handle_delivery": handle_delivery,
    "goals.jobs.sync_all_due": sync_all_due,
    "goals.jobs.sync_connection": sync_connection,
}


def run_queued(path: str, *args: object) -> object:
    """Queue `path` on django-q2's ORM broker, then run the queued task as a cluster worker
    does (the stored path resolved with pydoc.locate)."""
    async_task(path, *args)
    [row] = OrmQ.objects.all()
    task = SignedPackage.loads(row.payload)
    job = pydoc.locate(task["func"])
    assert callable(job), task["func"]
    return job(*task["args"], **task["kwargs"])


@pytest.mark.parametrize("path", FORMER)
def test_the_worker_finds_the_current_job_under_its_former_path(path):
    # django-q2's worker turns a stored dotted path into the function with pydoc.locate.
    assert pydoc.locate(path) is FORMER[path]
    assert is_job_function(path)


@pytest.mark.parametrize(
    ("path", "args", "expected"),
    [
        ("integrations.jobs.run_claimed_job", (987654,), "not ours any more"),
        (
            "integrations.webhook_jobs.check_all_webhooks",
            (),
            WebhookChecks(connections={}, pruned_deliveries=0),
        ),
        (
            "integrations.webhooks.handle_delivery",
            (987654, []),
            DeliveryOutcome(skipped="registration deleted"),
        ),
    ],
)
def test_a_task_queued_under_a_former_path_runs_the_current_job(path, args, expected):
    assert run_queued(path, *args) == expected


def test_a_former_poll_path_runs_the_current_poll(settings):
    settings.PILOT_EXECUTOR_COMMAND = ""
    settings.PILOT_EXECUTOR = ""

    assert run_queued("integrations.jobs.poll_all") == poll_all()


def test_migrate_repoints_a_schedule_made_under_a_former_path():
    Schedule.objects.create(
        name="nightly poll", func="integrations.jobs.poll_all", schedule_type=Schedule.DAILY
    )
    Schedule.objects.create(
        name="old delivery", func="integrations.webhooks.handle_delivery", schedule_type="D"
    )

    call_command("migrate", verbosity=0)

    assert Schedule.objects.get(name="nightly poll").func == job_path(poll_all)
    assert (
        Schedule.objects.get(name="old delivery").func
        == "integrations.webhooks.jobs.handle_delivery"
    )


def test_the_admin_offers_the_current_path_of_every_job_and_no_former_one():
    current: list[Callable[..., Any]] = [poll_all, run_claimed_job, decided_job, check_all_webhooks]
    current += [handle_delivery, sync_all_due, sync_connection]

    assert job_functions() == sorted(job_path(f) for f in current)
    assert "integrations.jobs.poll_all" not in job_functions()
