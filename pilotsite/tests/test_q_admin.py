"""django-q2's admin cannot be used to run arbitrary functions, and pilotsite's own schedules
cannot be edited or deleted from it by accident."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_q.models import OrmQ, Schedule, Task
from django_q.signing import SignedPackage

from goals.jobs import FORMER_SCHEDULE_NAMES
from goals.jobs import ensure_schedules as ensure_goal_schedules
from integrations.models import AuditLog
from integrations.pipeline.jobs import ensure_schedules
from pilotsite.schedules import OWNED_PREFIX

ADD = reverse("admin:django_q_schedule_add")
CHANGELIST = reverse("admin:django_q_schedule_changelist")
SCHEDULE = {
    "name": "nightly poll",
    "func": "integrations.pipeline.jobs.poll_all",
    "args": "",
    "kwargs": "",
    "schedule_type": "D",
    "minutes": "",
    "repeats": "-1",
    "next_run_0": "2026-12-01",
    "next_run_1": "03:00:00",
    "cron": "",
    "cluster": "",
    "intended_date_kwarg": "",
}


@pytest.fixture
def owned(db) -> list[Schedule]:
    ensure_schedules()
    ensure_goal_schedules()
    return list(Schedule.objects.filter(name__startswith=OWNED_PREFIX))


@pytest.fixture
def q_staff(client, outsider_user):
    """Staff holding every django-q2 permission, but not a superuser."""
    outsider_user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_q")
    )
    client.force_login(outsider_user)
    return client


def queued_funcs() -> list[str]:
    return [SignedPackage.loads(row.payload)["func"] for row in OrmQ.objects.all()]


def test_a_schedule_cannot_name_an_arbitrary_function(admin_client):
    response = admin_client.post(ADD, {**SCHEDULE, "func": "os.system", "args": "'id'"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Schedule.objects.filter(func="os.system").exists()


def test_a_superuser_may_schedule_one_of_pilotsites_jobs_and_it_is_audited(admin_client):
    response = admin_client.post(ADD, SCHEDULE)
    assert response.status_code == 302
    assert Schedule.objects.get(name="nightly poll").func == "integrations.pipeline.jobs.poll_all"
    assert AuditLog.objects.filter(action="admin.schedule.add").exists()


def test_the_owned_prefix_is_reserved(admin_client):
    response = admin_client.post(ADD, {**SCHEDULE, "name": OWNED_PREFIX + "mine"})
    assert "reserved for pilotsite" in response.content.decode()


def test_staff_with_django_q_permissions_may_look_but_not_change(q_staff, owned):
    assert q_staff.get(CHANGELIST).status_code == 200
    assert q_staff.post(ADD, SCHEDULE).status_code == 403
    mine = Schedule.objects.create(name="someone's", func="integrations.pipeline.jobs.poll_all")
    change = reverse("admin:django_q_schedule_change", args=[mine.pk])
    assert q_staff.post(change, {**SCHEDULE, "func": "goals.jobs.sync_all_due"}).status_code == 403
    delete = reverse("admin:django_q_schedule_delete", args=[mine.pk])
    assert q_staff.post(delete, {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=mine.pk, func="integrations.pipeline.jobs.poll_all").exists()


def test_owned_schedules_are_read_only_even_for_superusers(admin_client, owned):
    schedule = owned[0]
    change = reverse("admin:django_q_schedule_change", args=[schedule.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="_save"' not in page
    assert admin_client.post(change, {**SCHEDULE, "name": schedule.name}).status_code == 403
    delete = reverse("admin:django_q_schedule_delete", args=[schedule.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [s.pk for s in owned], "post": "yes"},
    )
    assert Schedule.objects.filter(name__startswith=OWNED_PREFIX).count() == len(owned)


def test_every_owned_schedule_is_named_alike_and_the_old_goals_name_is_folded_in(db):
    Schedule.objects.create(name=FORMER_SCHEDULE_NAMES[0], func="goals.jobs.sync_all_due")
    ensure_goal_schedules()
    ensure_schedules()
    assert not Schedule.objects.filter(name__in=FORMER_SCHEDULE_NAMES).exists()
    names = list(Schedule.objects.values_list("name", flat=True))
    assert len(names) == 3 and all(n.startswith(OWNED_PREFIX) for n in names)


def _failed_task(func: str) -> Task:
    return Task.objects.create(
        id="a" * 32,
        name="t1",
        func=func,
        args=(),
        kwargs={},
        started="2026-11-30T00:00Z",
        stopped="2026-11-30T00:00Z",
        success=False,
    )


def test_resubmit_runs_only_pilotsites_jobs_and_is_audited(admin_client):
    failure = reverse("admin:django_q_failure_changelist")
    task = _failed_task("os.system")
    admin_client.post(failure, {"action": "resubmit_task", "_selected_action": [task.pk]})
    assert queued_funcs() == []
    Task.objects.all().delete()
    task = _failed_task("integrations.webhooks.jobs.check_all_webhooks")
    admin_client.post(failure, {"action": "resubmit_task", "_selected_action": [task.pk]})
    assert queued_funcs() == ["integrations.webhooks.jobs.check_all_webhooks"]
    assert AuditLog.objects.filter(action="admin.task.resubmit").count() == 1


def test_staff_who_are_not_superusers_cannot_resubmit(q_staff):
    task = _failed_task("integrations.webhooks.jobs.check_all_webhooks")
    q_staff.post(
        reverse("admin:django_q_failure_changelist"),
        {"action": "resubmit_task", "_selected_action": [task.pk]},
    )
    assert queued_funcs() == []
