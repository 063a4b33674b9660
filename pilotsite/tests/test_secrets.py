"""Tokens and webhook secrets: encrypted at rest, never logged, redacted from error text."""

import logging
import sys

import pytest
from django.db import connection as db

from integrations.models import AsanaConnection, WebhookRegistration
from pilotsite import crypto
from pilotsite.redact import MASK, RedactingFilter, mask, redact, register_secret

TOKEN = "2/1204567890123456/1209876543210987:0123456789abcdef0123456789abcdef"


def raw_column(table: str, column: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_access_token_is_stored_encrypted_and_read_back_in_clear():
    saved = AsanaConnection.objects.create(workspace_gid="42", access_token=TOKEN)
    stored = raw_column("integrations_asanaconnection", "access_token", saved.pk)
    assert TOKEN not in stored
    assert AsanaConnection.objects.get(pk=saved.pk).access_token == TOKEN


@pytest.mark.django_db
def test_webhook_secret_is_stored_encrypted():
    conn = AsanaConnection.objects.create(workspace_gid="42", access_token=TOKEN)
    hook = WebhookRegistration.objects.create(
        connection=conn, resource_gid="7", target_url="https://x.example/", secret="s3cr3t-hook"
    )
    assert "s3cr3t-hook" not in raw_column("integrations_webhookregistration", "secret", hook.pk)


@pytest.mark.django_db
def test_a_changed_key_gives_an_error_that_says_what_to_do(settings):
    saved = AsanaConnection.objects.create(workspace_gid="42", access_token=TOKEN)
    settings.FIELD_ENCRYPTION_KEY = "another key entirely"
    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        AsanaConnection.objects.get(pk=saved.pk)


def test_asana_shaped_tokens_are_redacted_even_when_never_registered():
    text = redact(f"request failed with Authorization: Bearer {TOKEN} and token={TOKEN}")
    assert TOKEN not in text
    assert MASK in text


def test_registered_secrets_are_redacted_whatever_their_shape():
    register_secret("plain-looking-secret-value")
    assert redact("oops plain-looking-secret-value leaked") == f"oops {MASK} leaked"


def test_log_records_are_redacted_by_the_logging_filter():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (TOKEN,), None)
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()


def test_tracebacks_in_log_records_are_redacted_too():
    try:
        raise RuntimeError(f"the request with token {TOKEN} failed")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError" in text and MASK in text
    assert TOKEN not in text


def test_mask_shows_only_the_last_four_characters():
    assert mask(TOKEN).endswith("cdef")
    assert TOKEN[:-4] not in mask(TOKEN)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        ("password=hunter2 and more", "hunter2"),
        ('{"api_key": "k-123456"}', "k-123456"),
        ("GITHUB_TOKEN=abc123", "abc123"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("key AKIAABCDEFGHIJKLMNOP leaked", "AKIAABCDEFGHIJKLMNOP"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ],
)
def test_common_secret_shapes_in_executor_output_are_redacted(text, secret):
    assert secret not in redact(text)


def test_ordinary_words_about_secrets_are_left_alone():
    assert redact("the password is fine; exit status 1") == "the password is fine; exit status 1"
