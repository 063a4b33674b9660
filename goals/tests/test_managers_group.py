"""The "Managers" group created by migration: view-only, created once."""

import importlib

from django.apps import apps
from django.contrib.auth.models import Group

migration = importlib.import_module("goals.migrations.0002_managers_group")


def _codenames() -> set[str]:
    group = Group.objects.get(name="Managers")
    return set(group.permissions.values_list("codename", flat=True))


def test_the_managers_group_may_only_view(db):
    assert _codenames() == {
        "view_goal",
        "view_keyresult",
        "view_goalsync",
        "view_employeegoalstate",
        "view_employee",
    }


def test_running_the_migration_again_duplicates_nothing(db):
    class Editor:
        class connection:
            alias = "default"

    migration.create_managers_group(apps, Editor())
    migration.create_managers_group(apps, Editor())

    assert Group.objects.filter(name="Managers").count() == 1
    assert len(_codenames()) == 5
