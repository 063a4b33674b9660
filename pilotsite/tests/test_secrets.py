"""Tokens and webhook secrets: encrypted at rest, never logged, redacted from error text."""

import logging
import sys

import pytest
from django.db import connection as db

from integrations.models import AsanaConnection, WebhookRegistration
from pilotsite import crypto
from pilotsite import redact as redact_module
from pilotsite.redact import (
    MASK,
    RedactingFilter,
    mask,
    redact,
    register_secret,
    registered_count,
)

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


# -- what is masked, and what is not ------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # env-style assignments whose name contains KEY, SECRET, TOKEN or PASSWORD
        ("SECRET_KEY=django-insecure-abc", f"SECRET_KEY={MASK}"),
        ("FIELD_ENCRYPTION_KEY=Zm9vYmFyYmF6", f"FIELD_ENCRYPTION_KEY={MASK}"),
        (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"export AWS_SECRET_ACCESS_KEY={MASK}"),
        ('DB_PASSWORD="two words"', f'DB_PASSWORD="{MASK}"'),
        ("aws_session_token = FQoGZXIvYXdzEJr", f"aws_session_token = {MASK}"),
        ("GET /cb?access_token=abc123&page=2", f"GET /cb?access_token={MASK}&page=2"),
        (
            '{"client_secret": "s3cr3t-value", "name": "x"}',
            f'{{"client_secret": "{MASK}", "name": "x"}}',
        ),
        # credentials inside URLs
        ("postgres://pilot:pa55word@db/pilot", f"postgres://pilot:{MASK}@db/pilot"),
        ("redis://:hunter2@127.0.0.1:6379/0", f"redis://:{MASK}@127.0.0.1:6379/0"),
        (
            "cloning https://bot:glpat-x@gitlab.example/x.git",
            f"cloning https://bot:{MASK}@gitlab.example/x.git",
        ),
        # shapes of secrets, wherever they appear
        (f"using {AWS_SECRET} now", f"using {MASK} now"),
        ("key id AKIAIOSFODNN7EXAMPLE", f"key id {MASK}"),
        ("ghp_" + "a" * 36 + " pushed", f"{MASK} pushed"),
        ("glpat-" + "b" * 20, MASK),
        ("xoxb-123456789012-abcdefABCDEF", MASK),
        ("sk-ant-api03-" + "c" * 30, MASK),
        (TOKEN, MASK),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9", f"Authorization: Bearer {MASK}"),
        ("password: hunter2", f"password: {MASK}"),
        # what must stay as it is: sentences and ids that only look near secrets
        ("commit 3f786850e387550fdab836ed7e6dc881de23001b merged", None),
        ("the bearer of this message", None),
        ("the password is fine; exit status 1", None),
        ("primary key: id", None),
        ("PILOT_TASK_ID=ASANA-42 PILOT_TASK_TITLE=Fix", None),
        ("https://app.asana.com/0/1204/1205 and postgres://db/pilot", None),
    ],
)
def test_redaction_masks_secrets_and_keeps_everything_else(text, expected):
    assert redact(text) == (text if expected is None else expected)


def product_sentences() -> list[str]:
    """Sentences pilotsite itself prints that mention tokens, passwords and secrets."""
    from integrations.asana.errors import AsanaAuthError, AsanaRateLimited, error_for_status
    from integrations.connect import explain
    from pilotsite.crypto import DecryptionError

    rejected = error_for_status(401, ["Not Authorized"], method="GET", path="/users/me")
    bad_page = error_for_status(
        400, ["offset: Your pagination token is invalid."], method="GET", path="/tasks"
    )
    return [
        explain(rejected),
        str(bad_page),
        f"Workspace 1204 is not reachable with this token: {rejected}",
        AsanaAuthError.advice,
        AsanaRateLimited.advice,
        "The token contains spaces or line breaks; paste it again exactly.",
        "No handshake secret is stored; re-register the webhook.",
        "Set ASANA_ACCESS_TOKEN to the personal access token, or run the command in a terminal",
        "a stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed",
        str(DecryptionError("token: the stored token cannot be read")),
        "Asana did not accept the token: the token was rejected by Asana (401)",
    ]


@pytest.mark.parametrize("sentence", product_sentences())
def test_sentences_the_product_prints_are_not_redacted(sentence):
    assert redact(sentence) == sentence


def test_pilotsites_own_configured_secrets_are_masked_by_value(settings, monkeypatch):
    settings.SECRET_KEY = "a-configured-secret-key-value"
    settings.FIELD_ENCRYPTION_KEY = "a-configured-field-key"
    settings.REDIS_URL = "redis://:redis-pass-value@127.0.0.1:6379/0"
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", "db-pass-value")
    text = redact(
        "dumped a-configured-secret-key-value, a-configured-field-key, redis-pass-value "
        "and db-pass-value"
    )
    assert text == f"dumped {MASK}, {MASK}, {MASK} and {MASK}"


def test_the_registry_of_secrets_is_bounded_and_keeps_the_newest(monkeypatch):
    monkeypatch.setattr(redact_module, "REGISTRY_MAX", 5)
    for n in range(8):
        register_secret(f"registered-secret-{n:03}")
    assert registered_count() == 5
    assert redact("registered-secret-007") == MASK
    assert redact("registered-secret-000") == "registered-secret-000"
