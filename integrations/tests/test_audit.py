import pytest
from django.urls import reverse

from integrations.audit import Action, AdminChange, AdminVerb, record
from integrations.audit.actions import action_label
from integrations.audit.text import describe
from integrations.models import AuditLog

pytestmark = pytest.mark.django_db


def test_an_action_is_stored_as_its_dotted_code():
    entry = record(Action.CONNECTION_TEST, target="Pilot Workspace (1201)")

    entry.refresh_from_db()
    assert entry.action == "connection.test"
    assert AuditLog.objects.filter(action=Action.CONNECTION_TEST).get() == entry


def test_an_admin_change_is_stored_under_its_model_and_verb_and_reads_as_a_sentence():
    entry = record(AdminChange("user", AdminVerb.DELETE), target="leaver")

    entry.refresh_from_db()
    assert entry.action == "admin.user.delete"
    assert describe(entry) == "system deleted the user leaver."


def test_actor_is_keyword_only():
    with pytest.raises(TypeError):
        record(Action.CONNECTION_TEST, "target")  # type: ignore[misc]


@pytest.mark.parametrize("action", list(Action))
def test_every_action_has_a_label_people_read(action):
    assert action.label != action.value and "." not in action.label and "_" not in action.label


def test_an_admin_change_and_an_unknown_code_have_labels_too():
    assert action_label("admin.user.add") == "user added in the admin"
    assert action_label("webhook.retired_in_2025") == "webhook.retired_in_2025"


def test_the_audit_lists_filter_offers_actions_by_their_labels(admin_client):
    record(Action.WEBHOOK_REGISTER, target="project 777")
    record(Action.CONNECTION_TEST, target="Pilot Workspace (1201)")
    url = reverse("admin:integrations_auditlog_changelist")

    page = admin_client.get(url).content.decode()
    assert ">webhook asked of Asana</a>" in page and ">connection tested</a>" in page
    assert ">webhook.register</a>" not in page

    filtered = admin_client.get(url, {"action": "webhook.register"}).content.decode()
    assert "project 777" in filtered and "Pilot Workspace (1201)" not in filtered


def test_an_audit_rows_page_shows_the_actions_label(admin_client):
    entry = record(Action.WEBHOOK_REGISTER, target="project 777")

    page = admin_client.get(
        reverse("admin:integrations_auditlog_change", args=[entry.pk])
    ).content.decode()
    assert "webhook asked of Asana" in page and "webhook.register" not in page


def test_a_detail_starting_with_a_tag_or_a_setting_keeps_its_case():
    tag = AuditLog(
        action=Action.ASANA_REMOVE_TAG,
        actor_label="pipeline",
        target="task 12",
        detail="pilot-stop (stopped)",
    )
    setting = AuditLog(
        action=Action.CONNECTION_SETTINGS,
        actor_label="admin",
        target="Acme (1)",
        detail="rollout_mode = 'shadow'",
    )
    comment = AuditLog(
        action=Action.ASANA_COMMENT, actor_label="pipeline", target="task 12", detail="done."
    )
    assert describe(tag) == "pipeline removed a tag in Asana from task 12. pilot-stop (stopped)."
    assert describe(setting).endswith("Acme (1). rollout_mode = 'shadow'.")
    assert describe(comment) == "pipeline commented in Asana on task 12. Done."
