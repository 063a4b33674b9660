"""Connections and employees that existed before rollout modes keep working as before:
automatic, and nobody an approver."""

import pytest

from pilotsite.tests.migration_support import migrate, migrate_to_latest

BEFORE = ("integrations", "0008_processedtask_runner")
AFTER = ("integrations", "0009_rollout_modes")


@pytest.mark.django_db(transaction=True)
def test_an_existing_connection_becomes_automatic_and_nobody_an_approver():
    old = migrate(BEFORE)
    old.get_model("integrations", "AsanaConnection").objects.create(
        workspace_gid="1", access_token=""
    )
    old.get_model("integrations", "Employee").objects.create(name="Ann", email="ann@example.com")

    new = migrate(AFTER)
    connection = new.get_model("integrations", "AsanaConnection").objects.get()
    employee = new.get_model("integrations", "Employee").objects.get()
    assert (connection.rollout_mode, employee.is_approver) == ("automatic", False)
    migrate_to_latest()
