"""Django's error report (the DEBUG page, error emails) never shows a token or a webhook
secret, DEBUG on or off: the `sensitive_variables` / `sensitive_post_parameters` markers on
the functions and views that hold them always apply."""

import sys
from typing import cast

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse
from django.views.debug import ExceptionReporter

from integrations.connect import ConnectError, verify_workspace
from integrations.models import WebhookRegistration
from integrations.tab_views import connect_view
from integrations.webhooks import views as webhook_views

# Not shaped like a known token, so only the markers can hide them. Built from parts: the
# report also shows source lines, and these must not be found there either.
TOKEN = "handwritten-personal-" + "access-token-7f3a9c"
SECRET = "hook-secret-" + "e81d0b77c2a54f"
PASSWORD = "redis-" + "password-41ac"


def report(request, exc_info) -> str:
    return ExceptionReporter(request, *exc_info).get_traceback_html()


@pytest.fixture(params=[True, False], ids=["DEBUG on", "DEBUG off"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


def test_report_hides_the_token_posted_and_held_while_connecting(
    debug, db, rf, admin_user, fake_asana
):
    request = rf.post(
        reverse("admin:integrations:connect"),
        {"token": TOKEN, "workspace_gid": fake_asana.workspace_gid, "pilot_tag": "pilot"},
    )
    request.user, request.session = admin_user, SessionStore()
    request._messages = FallbackStorage(request)
    connect_view(request)  # Asana refuses the unknown token; the view marks what is secret
    with pytest.raises(ConnectError) as caught:
        verify_workspace(TOKEN, fake_asana.workspace_gid)
    page = report(request, (caught.type, caught.value, caught.tb))
    assert "verify_workspace" in page  # the frame holding the token is in the report
    assert TOKEN not in page
    assert "********************" in page


def test_report_hides_the_webhook_secret_of_a_failing_handshake(debug, rf):
    request = rf.post("/webhooks/asana/x/", HTTP_X_HOOK_SECRET=SECRET)
    try:
        # No registration: it raises inside, with the secret in the failing frame.
        webhook_views._handshake(request, cast(WebhookRegistration, None), SECRET)
    except AttributeError:
        page = report(request, sys.exc_info())
    assert "_handshake" in page
    assert SECRET not in page


def test_report_hides_urls_that_carry_a_password(debug, settings, rf):
    settings.REDIS_URL = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = report(rf.get("/"), sys.exc_info())
    assert "REDIS_URL" in page
    assert PASSWORD not in page
