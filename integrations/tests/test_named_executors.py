"""Named executors: defined by the operator, picked per connection on the card, routed by tag,
recorded on each run."""

import json
from typing import Any

import pytest
from django.core.checks import run_checks
from django.urls import reverse

from integrations.models import AuditLog, ProcessedTask
from integrations.pipeline.dispatch import dispatch_task
from integrations.pipeline.executors import (
    ExecutorChoiceError,
    choose,
    describe,
    executor_configured,
    load,
    set_executor_choice,
)
from integrations.tests.pipeline_fixtures import CALLS, process, tagged

TAB = reverse("admin:index") + "?tab=integrations"
DOCS = {"docs-agent": {"callable": "integrations.tests.test_named_executors:docs_agent"}}


def docs_agent(task: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(f"docs:{task['gid']}")
    return {"summary": "wrote the docs"}


@pytest.fixture
def named(settings, executor) -> dict:
    """`default` (the in-process `succeed`) and `docs-agent`, defined in PILOT_EXECUTORS."""
    settings.PILOT_EXECUTORS = json.dumps(DOCS)
    return settings


def messages_of(problem_id: str) -> list[str]:
    return [e.msg for e in run_checks() if e.id == problem_id]


# -- definitions ----------------------------------------------------------------------------


def test_the_existing_command_setting_is_the_default_executor(settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", "/opt/agent/run"
    settings.PILOT_EXECUTOR_TIMEOUT = 60
    executors, problems = load()
    assert problems == []
    assert (executors["default"].command, executors["default"].timeout) == ("/opt/agent/run", 60)


def test_executors_are_read_from_json_and_from_a_file(settings, tmp_path):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", ""
    settings.PILOT_EXECUTORS = json.dumps({"docs-agent": {"command": "/opt/docs", "timeout": 900}})
    path = tmp_path / "executors.json"
    path.write_text(json.dumps({"triage": {"callable": "acme.triage:run"}}))
    settings.PILOT_EXECUTORS_FILE = str(path)
    executors, problems = load()
    assert problems == []
    assert executors["docs-agent"].command == "/opt/docs"
    assert executors["docs-agent"].timeout == 900
    assert executors["triage"].callable == "acme.triage:run"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{nope", "PILOT_EXECUTORS is not valid JSON"),
        ("[]", "PILOT_EXECUTORS must be a JSON object"),
        ('{"Bad Name": {"command": "x"}}', "a name is lower-case letters"),
        ('{"a": {"command": "x", "shell": "y"}}', "has unknown keys shell"),
        ('{"a": {"command": "x", "callable": "m:f"}}', "needs exactly one of 'command'"),
        ('{"a": {}}', "needs exactly one of 'command'"),
        ('{"a": {"command": "x", "timeout": "soon"}}', "timeout must be a whole number"),
        ('{"default": {"command": "x"}}', "is defined by both PILOT_EXECUTOR_COMMAND"),
    ],
    ids=["json", "not object", "name", "unknown key", "both", "neither", "timeout", "twice"],
)
def test_a_malformed_definition_fails_the_check_and_says_what_to_fix(settings, raw, problem):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", "/opt/agent/run"
    settings.PILOT_EXECUTORS = raw
    (message,) = messages_of("pilotsite.E006")
    assert problem in message


def test_an_unreadable_executors_file_fails_the_check(settings, tmp_path):
    settings.PILOT_EXECUTORS_FILE = str(tmp_path / "missing.json")
    (message,) = messages_of("pilotsite.E006")
    assert "cannot be read" in message and "missing.json" in message


def test_an_executors_file_that_is_not_utf8_fails_the_check(settings, tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"caf\xe9": {"command": "x"}}'.encode("latin-1"))
    settings.PILOT_EXECUTORS_FILE = str(path)
    (message,) = messages_of("pilotsite.E006")
    assert "is not UTF-8" in message and "latin1.json" in message


def test_every_named_callable_is_validated_by_the_check(settings):
    settings.PILOT_EXECUTORS = json.dumps({"triage": {"callable": "nope.mod:fn"}})
    assert messages_of("pilotsite.E005") == [
        "executor 'triage' 'nope.mod:fn' cannot be imported: No module named 'nope'; "
        "fix the setting"
    ]


# -- choosing ---------------------------------------------------------------------------------


def test_a_task_with_a_routed_tag_gets_that_executor_and_the_reason(connection, named):
    set_executor_choice(connection, "default", [("docs", "docs-agent")])
    choice = choose(connection, ["bug", "docs"])
    assert (choice.name, choice.reason) == ("docs-agent", "tagged 'docs'")
    assert choose(connection, ["bug"]).name == "default"
    assert choose(connection, ["bug"]).reason == "the connection's executor"


def test_a_run_records_which_executor_ran_it_and_why(connection, pilot, named, calls):
    set_executor_choice(connection, "default", [("docs", "docs-agent")])
    docs = process(connection, tagged(pilot, "Document the API", tags=["docs"]))
    plain = process(connection, tagged(pilot, "Fix the bug"))
    assert (docs.executor, docs.executor_reason) == ("docs-agent", "tagged 'docs'")
    assert (plain.executor, plain.executor_reason) == ("default", "the connection's executor")
    assert calls == [f"docs:{docs.task_gid}", plain.task_gid]
    assert docs.result_summary == "wrote the docs"


def test_a_connection_whose_executor_is_not_defined_claims_nothing(connection, pilot, named):
    connection.executor = "gone"
    connection.save()
    assert not executor_configured(connection)
    assert "executor 'gone' is not defined" in describe("gone")
    gid = tagged(pilot, "nobody can run it")
    assert dispatch_task(connection, gid, source="webhook", runner=lambda p: None) is None
    assert not ProcessedTask.objects.exists()


def test_a_rule_naming_an_executor_removed_later_fails_the_task_saying_which(
    connection, pilot, named, settings
):
    set_executor_choice(connection, "default", [("docs", "docs-agent")])
    settings.PILOT_EXECUTORS = ""
    done = process(connection, tagged(pilot, "Document", tags=["docs"]))
    assert done.state == ProcessedTask.State.FAILED
    assert "executor 'docs-agent' is not defined" in done.error


def test_a_choice_of_an_undefined_executor_is_refused_and_nothing_is_saved(connection, named):
    with pytest.raises(ExecutorChoiceError, match="no executor named 'rm -rf /'"):
        set_executor_choice(connection, "rm -rf /", [])
    with pytest.raises(ExecutorChoiceError, match="names no defined executor"):
        set_executor_choice(connection, "docs-agent", [("docs", "nope")])
    with pytest.raises(ExecutorChoiceError, match="has two rules"):
        set_executor_choice(connection, "default", [("docs", "default"), ("docs", "docs-agent")])
    connection.refresh_from_db()
    assert (connection.executor, connection.executor_routes) == ("default", [])
    assert not AuditLog.objects.filter(action="connection.executor").exists()


# -- the card ---------------------------------------------------------------------------------


def test_admin_picks_an_executor_and_a_tag_rule_on_the_card(admin_client, connection, named):
    response = admin_client.post(
        reverse("admin:integrations:executor", args=[connection.pk]),
        {
            "executor": "docs-agent",
            "route_tag": ["docs", ""],
            "route_executor": ["default", "default"],
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.executor == "docs-agent"
    assert connection.executor_routes == [{"tag": "docs", "executor": "default"}]
    audit = AuditLog.objects.get(action="connection.executor")
    assert audit.actor_label == "admin"
    assert audit.detail == "executor docs-agent; tagged 'docs' → default"
    page = admin_client.get(TAB).content.decode()
    assert 'data-executor="docs-agent"' in page
    assert "tasks also tagged <code>docs</code> → <strong>default</strong>" in page


def test_a_refused_choice_is_explained_beside_the_form(admin_client, connection, named):
    admin_client.post(
        reverse("admin:integrations:executor", args=[connection.pk]),
        {"executor": "docs-agent", "route_tag": ["docs"], "route_executor": ["nope"]},
    )
    page = admin_client.get(TAB).content.decode()
    assert f'id="executor-{connection.pk}-error"' in page
    assert "Executor not saved: The rule for tag &#x27;docs&#x27; names no defined executor" in page
    connection.refresh_from_db()
    assert connection.executor == "default"


def test_the_card_shows_which_executor_each_run_got_and_why(admin_client, connection, pilot, named):
    set_executor_choice(connection, "default", [("docs", "docs-agent")])
    docs = process(connection, tagged(pilot, "Document the API", tags=["docs"]))
    page = admin_client.get(TAB).content.decode()
    assert (
        f"ASANA-{docs.task_gid} (Document the API) ran on <strong>docs-agent</strong>: "
        "tagged &#x27;docs&#x27;"
    ) in page


@pytest.fixture
def viewer(db, django_user_model):
    """Staff who may view connections (and their card) but change nothing."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw")
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_asanaconnection"))
    return user


def test_a_viewer_sees_the_executor_but_cannot_choose(client, viewer, connection, named):
    client.force_login(viewer)
    page = client.get(TAB).content.decode()
    assert 'data-executor="default"' in page
    assert "Choose the executor" not in page
    response = client.post(
        reverse("admin:integrations:executor", args=[connection.pk]), {"executor": "docs-agent"}
    )
    assert response.status_code == 403
    connection.refresh_from_db()
    assert connection.executor == "default"


def test_a_manager_cannot_choose_an_executor(client, manager_user, connection, named):
    client.force_login(manager_user)
    response = client.post(
        reverse("admin:integrations:executor", args=[connection.pk]), {"executor": "docs-agent"}
    )
    assert response.status_code == 403


def test_the_card_offers_names_only_never_a_command_field(admin_client, connection, named):
    page = admin_client.get(TAB).content.decode()
    section = page[page.index(f'id="executor-{connection.pk}"') :]
    section = section[: section.index("</section>")]
    assert 'name="executor"' in section
    assert 'name="command"' not in section and "<textarea" not in section


def test_the_ledger_admin_lists_the_executor_of_each_run(admin_client, connection, pilot, named):
    set_executor_choice(connection, "default", [("docs", "docs-agent")])
    process(connection, tagged(pilot, "Document the API", tags=["docs"]))
    page = admin_client.get(reverse("admin:integrations_processedtask_changelist")).content
    assert b'<td class="field-executor">docs-agent</td>' in page
