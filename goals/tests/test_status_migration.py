"""Stored goal statuses move to Asana's own values, and back."""

import pytest

from pilotsite.tests.migration_support import migrate, migrate_to_latest

BEFORE = ("goals", "0002_managers_group")
AFTER = ("goals", "0003_status_as_asana_sends_it")
# (status pilotsite stored, Asana's raw value it kept beside it) -> the status stored now
ROWS = [
    ("on_track", "green", "green"),
    ("at_risk", "yellow", "yellow"),
    ("off_track", "red", "red"),
    ("completed", "achieved", "achieved"),
    ("at_risk", "partial", "partial"),
    ("off_track", "missed", "missed"),
    ("off_track", "dropped", "dropped"),
    ("on_track", "", ""),  # Asana sent null: it was shown "on track"
]


@pytest.mark.django_db(transaction=True)
def test_stored_statuses_become_asanas_values_and_can_go_back():
    old = migrate(BEFORE)
    Employee = old.get_model("integrations", "Employee")
    AsanaConnection = old.get_model("integrations", "AsanaConnection")
    Goal, KeyResult = old.get_model("goals", "Goal"), old.get_model("goals", "KeyResult")
    conn = AsanaConnection.objects.create(workspace_gid="1", access_token="")
    ada = Employee.objects.create(name="Ada", email="ada@example.com")
    parent = None
    for n, (status, raw, _) in enumerate(ROWS):
        goal = Goal.objects.create(
            employee=ada,
            connection=conn,
            asana_gid=str(n),
            name=f"g{n}",
            status=status,
            asana_status=raw,
        )
        KeyResult.objects.create(
            goal=goal, asana_gid=str(n), name=f"k{n}", status=status, asana_status=raw
        )
        parent = parent or goal

    new = migrate(AFTER)
    expected = [(f"g{n}", now) for n, (_, _, now) in enumerate(ROWS)]
    assert list(
        new.get_model("goals", "Goal").objects.order_by("asana_gid").values_list("name", "status")
    ) == sorted(expected)
    assert sorted(new.get_model("goals", "KeyResult").objects.values_list("status", flat=True)) == (
        sorted(now for _, _, now in ROWS)
    )

    back = migrate(BEFORE)
    assert sorted(
        back.get_model("goals", "Goal").objects.values_list("status", "asana_status")
    ) == (sorted((status, raw) for status, raw, _ in ROWS))
    migrate_to_latest()
