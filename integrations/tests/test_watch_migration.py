"""Search detected rather than chosen: existing connections move to the automatic watch
method unless a person chose the tag list, and the move can be undone."""

import pytest

from pilotsite.tests.migration_support import migrate, migrate_to_latest

BEFORE = ("integrations", "0010_safety_rails")
AFTER = ("integrations", "0011_watch_method_auto")


@pytest.fixture
def old_connections(transactional_db):
    """Connections as stored before: gid → watch method."""
    old = migrate(BEFORE)
    AsanaConnection = old.get_model("integrations", "AsanaConnection")
    AuditLog = old.get_model("integrations", "AuditLog")
    methods = {"1": "tag_list", "2": "tag_list", "3": "search", "4": "webhooks_first"}
    for gid, method in methods.items():
        AsanaConnection.objects.create(workspace_gid=gid, access_token="", watch_method=method)
    chose = AsanaConnection.objects.get(workspace_gid="2")
    AuditLog.objects.create(
        action="connection.settings",
        actor_label="admin",
        detail="poll_interval = 60; watch_method = 'tag_list'",
        connection=chose,
    )
    yield
    migrate_to_latest()


def methods_after(target) -> dict[str, str]:
    AsanaConnection = migrate(target).get_model("integrations", "AsanaConnection")
    return dict(AsanaConnection.objects.values_list("workspace_gid", "watch_method"))


def test_connections_move_to_automatic_unless_the_tag_list_was_chosen(old_connections):
    assert methods_after(AFTER) == {
        "1": "auto",  # the old default, never chosen
        "2": "tag_list",  # chosen in the settings
        "3": "auto",  # search with its 402 fallback is what automatic does
        "4": "webhooks_first",
    }


def test_each_move_from_the_default_is_audited(old_connections):
    AuditLog = migrate(AFTER).get_model("integrations", "AuditLog")

    [moved] = AuditLog.objects.filter(detail__startswith="watch_method = 'auto'")

    assert moved.connection.workspace_gid == "1" and moved.action == "connection.settings"


def test_undoing_the_migration_puts_automatic_connections_on_search(old_connections):
    methods_after(AFTER)

    assert methods_after(BEFORE) == {
        "1": "search",
        "2": "tag_list",
        "3": "search",
        "4": "webhooks_first",
    }
