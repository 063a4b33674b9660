import pytest

from integrations.audit import Action, AdminChange, AdminVerb, record
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
