"""The [GOALS] review block and `manage.py goalsblock`."""

import datetime

import pytest
from django.core.management import CommandError, call_command

from goals.block import NO_GOALS, NOT_MAPPED, goals_block
from goals.models import Goal, GoalStatus, KeyResult
from integrations.models import AsanaConnection, AsanaMapping, Employee

JAN_2026 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def ada(db) -> Employee:
    return Employee.objects.create(name="Ada", email="ada@example.com")


def _goal(employee: Employee, name: str, gid: str, **fields) -> Goal:
    connection, _ = AsanaConnection.objects.get_or_create(
        workspace_gid="1", defaults={"access_token": "t"}
    )
    return Goal.objects.create(
        employee=employee, connection=connection, name=name, asana_gid=gid, **fields
    )


def test_a_mapped_employee_without_goals_gets_a_clear_line(ada):
    connection = AsanaConnection.objects.create(workspace_gid="1", access_token="t")
    AsanaMapping.objects.create(employee=ada, connection=connection, asana_user_gid="7")
    assert goals_block(ada) == f"[GOALS]\n{NO_GOALS}"


def test_an_unmapped_employee_is_not_said_to_have_no_goals(ada):
    assert goals_block(ada) == f"[GOALS]\n{NOT_MAPPED}"


def test_goals_come_in_due_date_order_with_key_results_beneath(ada):
    later = _goal(ada, "Later", "2", due_on=datetime.date(2026, 9, 1), status=GoalStatus.AT_RISK)
    _goal(ada, "Undated", "3")
    _goal(ada, "Sooner", "1", due_on=datetime.date(2026, 3, 1), status=GoalStatus.ACHIEVED)
    KeyResult.objects.create(
        goal=later, asana_gid="12", name="Second KR", position=1, status=GoalStatus.ON_TRACK
    )
    KeyResult.objects.create(
        goal=later, asana_gid="11", name="First KR", position=0, status=GoalStatus.OFF_TRACK
    )

    assert goals_block(ada, now=JAN_2026) == "\n".join(
        [
            "[GOALS]",
            "- Sooner — status: Achieved (closed) — due 2026-03-01",
            "- Later — status: At risk — due 2026-09-01",
            "  - Key result: First KR — status: Off track",
            "  - Key result: Second KR — status: On track",
            "- Undated — status: No status — no due date",
        ]
    )


def test_the_block_is_stable_across_insertion_order(ada):
    _goal(ada, "B", "2")
    _goal(ada, "A", "1")
    first = goals_block(ada)
    Goal.objects.all().delete()
    _goal(ada, "A", "1")
    _goal(ada, "B", "2")

    assert goals_block(ada) == first


def test_another_employees_goals_are_not_in_the_block(ada):
    bob = Employee.objects.create(name="Bob", email="bob@example.com")
    _goal(bob, "Bob's", "9")

    assert "Bob's" not in goals_block(ada)


def test_goalsblock_prints_the_block(ada, capsys):
    _goal(ada, "Ship it", "1")

    call_command("goalsblock", "ADA@example.com")

    assert capsys.readouterr().out.startswith("[GOALS]\n- Ship it — status: No status")


def test_goalsblock_rejects_an_unknown_email(db):
    with pytest.raises(CommandError, match="No employee"):
        call_command("goalsblock", "nobody@example.com")
