"""Ledger rows claimed before the runner kind had a field get it from their claim token."""

import pytest

from pilotsite.tests.migration_support import migrate, migrate_to_latest

BEFORE = ("integrations", "0007_connection_setting_rules")
AFTER = ("integrations", "0008_processedtask_runner")
# claim token as stored before → the runner kind stored now
TOKENS = [
    ("q@host:12:abc", "q"),
    ("runpollers@host:13:abc", "runpollers"),
    ("recovery@host:14:abc", "recovery"),
    ("worker@host:15:abc", "worker"),
    ("webhook@host:16:abc", "worker"),
    ("", ""),
]


@pytest.mark.django_db(transaction=True)
def test_the_runner_kind_is_filled_from_the_claim_token_prefix():
    old = migrate(BEFORE)
    conn = old.get_model("integrations", "AsanaConnection").objects.create(
        workspace_gid="1", access_token=""
    )
    ProcessedTask = old.get_model("integrations", "ProcessedTask")
    for n, (token, _) in enumerate(TOKENS):
        ProcessedTask.objects.create(connection=conn, task_gid=str(n), claimed_by=token)

    new = migrate(AFTER)
    rows = new.get_model("integrations", "ProcessedTask").objects.order_by("task_gid")
    assert list(rows.values_list("claimed_by", "runner")) == TOKENS
    migrate_to_latest()
