"""The "Managers" group created by migration: view-only (status drafts aside), created once."""

import importlib

from django.contrib.auth.models import Group
from django.db import connection as db_connection
from django.db.migrations.loader import MigrationLoader

migration = importlib.import_module("goals.migrations.0002_managers_group")


def _codenames() -> set[str]:
    group = Group.objects.get(name="Managers")
    return set(group.permissions.values_list("codename", flat=True))


def test_the_managers_group_may_only_view_and_draft_status_updates(db):
    assert _codenames() == {
        "view_goal",
        "view_keyresult",
        "view_goalsync",
        "view_employeegoalstate",
        "view_employee",
        "add_statusdraft",
        "view_statusdraft",
    }


def test_running_the_migration_again_duplicates_nothing(db):
    class Editor:
        connection = db_connection

    # The migration's own (historical) app registry: the function flips `models_module` on
    # the app configs it is given, which must never touch the live registry.
    state = MigrationLoader(db_connection).project_state(("goals", "0002_managers_group"))
    migration.create_managers_group(state.apps, Editor())
    migration.create_managers_group(state.apps, Editor())

    assert Group.objects.filter(name="Managers").count() == 1
    assert len(_codenames()) == 7


def test_post_migrate_restores_the_same_permissions_the_migration_grants(db):
    from goals.roles import MANAGER_PERMISSIONS, ensure_managers_group

    granted_by_migration = _codenames()
    Group.objects.filter(name="Managers").delete()

    ensure_managers_group()

    assert _codenames() == granted_by_migration == {codename for _, codename in MANAGER_PERMISSIONS}
