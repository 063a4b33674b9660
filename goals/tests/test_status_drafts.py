"""Status drafts: drafted by a fake OpenAI-compatible model over real HTTP, reviewed, and
posted to the fake Asana only after approval; hidden when no model is configured."""

import datetime
import logging

import pytest
from django.urls import reverse
from django.utils import timezone

from goals.llm import client as llm
from goals.llm.fake_server import FakeLLM
from goals.models import Goal, ProgressSnapshot, StatusDraft
from goals.sync import sync_goals
from integrations.models import AuditLog

TAB = "/admin/?tab=goals"


@pytest.fixture
def model(settings):
    with FakeLLM() as fake:
        settings.LLM_API_BASE = fake.base_url
        settings.LLM_API_KEY = fake.key
        settings.LLM_MODEL = fake.model
        yield fake


@pytest.fixture
def goal(fake_asana, connection, hire, asana_client, manager_user) -> Goal:
    """Ada (the manager's report) owns "Grow revenue" at 40 %, which was 20 % two weeks ago."""
    _, ada = hire("Ada", manager=manager_user)
    fake_asana.add_goal(
        fake_asana.workspace_gid,
        "Grow revenue",
        owner_gid=ada,
        status="yellow",
        due_on=str(timezone.localdate() + datetime.timedelta(days=30)),
        metric={"initial_number_value": 0, "current_number_value": 40, "target_number_value": 100},
    )
    assert sync_goals(connection, client=asana_client).ok
    goal = Goal.objects.get()
    ProgressSnapshot.objects.create(
        goal=goal, taken_at=timezone.now() - datetime.timedelta(days=14), progress=0.2
    )
    return goal


def _draft(client, user, goal) -> StatusDraft:
    client.force_login(user)
    response = client.post(reverse("admin:goals:request_draft", args=[goal.pk]))
    assert response.status_code == 302
    return StatusDraft.objects.get()


def test_without_a_model_configured_the_feature_is_hidden(client, manager_user, goal):
    client.force_login(manager_user)

    assert "Draft a status update" not in client.get(TAB).content.decode()
    assert client.post(reverse("admin:goals:request_draft", args=[goal.pk])).status_code == 404


def test_with_a_model_configured_a_manager_is_offered_a_draft(client, manager_user, goal, model):
    client.force_login(manager_user)

    assert "Draft a status update" in client.get(TAB).content.decode()


def test_the_draft_is_built_from_the_stored_history_and_nothing_is_posted(
    client, manager_user, goal, model, fake_asana
):
    draft = _draft(client, manager_user, goal)

    prompt = model.requests[0]["messages"][-1]["content"]
    assert "Progress: 40% (40 of 100)" in prompt
    assert (
        "- " + (timezone.now() - datetime.timedelta(days=14)).strftime("%Y-%m-%d") + ": 20%"
        in prompt
    )
    assert "Status in Asana: At risk" in prompt
    assert draft.state == StatusDraft.State.PENDING and "Progress: 40%" in draft.text
    assert draft.status_type == "at_risk"
    assert fake_asana.status_updates(goal.asana_gid) == []


def test_approving_posts_the_edited_text_as_a_status_update_on_the_goal(
    client, manager_user, goal, model, fake_asana
):
    draft = _draft(client, manager_user, goal)

    client.post(
        reverse("admin:goals:draft", args=[draft.pk]),
        {"decision": "approve", "text": "Edited by the manager.", "status_type": "off_track"},
    )

    (update,) = fake_asana.status_updates(goal.asana_gid)
    assert (update["text"], update["status_type"]) == ("Edited by the manager.", "off_track")
    assert update["resource_subtype"] == "goal_status_update"
    draft.refresh_from_db()
    assert (draft.state, draft.decided_by, draft.asana_gid) == (
        "posted",
        manager_user,
        update["gid"],
    )
    audit = AuditLog.objects.get(action="goals.status_posted")
    assert audit.actor == manager_user and "Edited by the manager." in audit.detail


def test_approving_twice_posts_once(client, manager_user, goal, model, fake_asana):
    draft = _draft(client, manager_user, goal)
    url = reverse("admin:goals:draft", args=[draft.pk])
    form = {"decision": "approve", "text": "Once.", "status_type": "on_track"}

    client.post(url, form)
    page = client.post(url, form, follow=True).content.decode()

    assert len(fake_asana.status_updates(goal.asana_gid)) == 1
    assert "already approved or rejected" in page


def test_a_rejected_draft_is_kept_with_who_rejected_it_and_nothing_is_posted(
    client, manager_user, goal, model, fake_asana
):
    draft = _draft(client, manager_user, goal)

    client.post(reverse("admin:goals:draft", args=[draft.pk]), {"decision": "reject"})

    draft.refresh_from_db()
    assert (draft.state, draft.decided_by) == ("rejected", manager_user)
    assert fake_asana.status_updates(goal.asana_gid) == []
    assert AuditLog.objects.filter(action="goals.status_rejected", actor=manager_user).exists()


def test_a_status_type_asana_does_not_allow_on_goals_is_refused_with_a_message(
    client, manager_user, goal, model, fake_asana
):
    draft = _draft(client, manager_user, goal)

    page = client.post(
        reverse("admin:goals:draft", args=[draft.pk]),
        {"decision": "approve", "text": "Paused.", "status_type": "on_hold"},
    ).content.decode()

    assert "Pick the goal&#x27;s status for this update" in page
    assert fake_asana.status_updates(goal.asana_gid) == []
    draft.refresh_from_db()
    assert draft.state == "pending"


def test_the_fake_asana_refuses_a_project_status_type_on_a_goal(goal, asana_client, fake_asana):
    from integrations.asana.errors import AsanaInvalidRequest

    with pytest.raises(AsanaInvalidRequest, match="status_type"):
        asana_client.create_status_update(goal.asana_gid, "complete", "Done")
    fake_asana.violations.clear()  # the contract's enum allows it; Asana refuses it on goals


def test_a_manager_cannot_draft_for_a_goal_outside_their_scope(
    client, goal, model, django_user_model
):
    from django.contrib.auth.models import Group

    stranger = django_user_model.objects.create_user("stranger", password="x", is_staff=True)
    stranger.groups.add(Group.objects.get(name="Managers"))
    client.force_login(stranger)

    assert client.post(reverse("admin:goals:request_draft", args=[goal.pk])).status_code == 404
    assert model.requests == []


def test_the_model_is_retried_on_429_and_5xx(model, settings):
    model.fail_next(429)
    model.fail_next(503)

    text = llm.complete([{"role": "user", "content": "progress 10%"}])

    assert text.startswith("On track overall.") and len(model.requests) == 3


def test_a_model_still_failing_after_the_retries_is_unavailable(model, settings):
    settings.LLM_MAX_RETRIES = 1
    model.fail_next(500, times=2)

    with pytest.raises(llm.LLMUnavailable, match="try again later"):
        llm.complete([{"role": "user", "content": "x"}])


def test_a_wrong_key_is_refused_and_never_shown_or_logged(model, settings, caplog):
    settings.LLM_API_KEY = "sk-wrong-" + "w" * 32
    caplog.set_level(logging.DEBUG)

    with pytest.raises(llm.LLMRejected) as refused:
        llm.complete([{"role": "user", "content": "x"}])

    assert "401" in str(refused.value) and "sk-wrong" not in str(refused.value)
    assert "sk-wrong" not in caplog.text


def test_an_unreachable_model_says_which_setting_to_check(settings):
    settings.LLM_API_BASE = "http://127.0.0.1:9/v1"
    settings.LLM_API_KEY = "sk-" + "a" * 40
    settings.LLM_MODEL = "m"
    settings.LLM_MAX_RETRIES = 0

    with pytest.raises(llm.LLMUnavailable, match="unreachable"):
        llm.complete([{"role": "user", "content": "x"}])


def test_a_model_error_is_shown_on_the_tab_and_no_draft_is_kept(client, manager_user, goal, model):
    model.fail_next(500, times=10)
    client.force_login(manager_user)
    from django.test import override_settings

    with override_settings(LLM_MAX_RETRIES=0):
        page = client.post(
            reverse("admin:goals:request_draft", args=[goal.pk]), follow=True
        ).content.decode()

    assert "try again later" in page and StatusDraft.objects.count() == 0
