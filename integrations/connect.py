"""Connecting a workspace: verify a token with Asana, then create or update the connection.

Everything is checked with Asana before anything is written, so a wrong token, an unknown
workspace or an Asana outage leaves the database exactly as it was.
"""

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations import audit
from integrations.asana.client import AsanaClient, client_for
from integrations.asana.errors import (
    AsanaAuthError,
    AsanaError,
    AsanaRateLimited,
    AsanaServerError,
    AsanaUnavailable,
)
from integrations.asana.tokens import InvalidToken, clean_token
from integrations.audit import Action
from integrations.models import AsanaConnection, AuditLog
from pilotsite.redact import redact


def interactive() -> dict[str, Any]:
    """Client options when a person is waiting on the page or the terminal: one try within
    ASANA_INTERACTIVE_TIMEOUT seconds, no retries, no long wait for the request budget, so a
    slow Asana costs a page view seconds, not the client's background retry schedule."""
    timeout = settings.ASANA_INTERACTIVE_TIMEOUT
    return {"max_retries": 0, "timeout": timeout, "max_budget_wait": timeout}


_GID = re.compile(r"^\d{1,32}$")


class ConnectError(Exception):
    """A connect or check failed; the message says what to do and nothing was saved."""


def validate_gid(value: str, what: str = "workspace GID") -> str:
    value = (value or "").strip()
    if not _GID.match(value):
        raise ConnectError(
            f"The {what} must be a number (digits only), for example 1204567890123456; "
            f"got {value!r}."
        )
    return value


def explain(exc: AsanaError) -> str:
    """Turn a client error into one sentence a person can act on: what to check, said once.

    Only a passing failure (Asana's 5xx or 429) says to try again later; a wrong token or an
    unreachable address is a configuration to fix, and says which.
    """
    if isinstance(exc, AsanaAuthError):
        return (
            f"Asana did not accept the token ({exc.status or 401}): check that it was copied "
            "whole and is not revoked, or create a new one (Asana: My settings → Apps → "
            "Developer apps)."
        )
    if isinstance(exc, AsanaUnavailable) and exc.cause == "timeout":
        return (
            "Asana did not answer in time; nothing was saved. Asana may be slow right now: "
            "try again in a few minutes."
        )
    if isinstance(exc, AsanaUnavailable) and exc.cause == "connect":
        return (
            f"Asana could not be reached at {settings.ASANA_API_BASE_URL}: check this server's "
            "network connection and the ASANA_API_BASE_URL setting. Nothing was saved."
        )
    if isinstance(exc, AsanaServerError | AsanaRateLimited):
        return (
            f"Asana is not available right now (it answered {exc.status}); nothing was saved. "
            "Try again in a few minutes."
        )
    return str(exc)


def _workspaces(me: dict[str, Any]) -> list[dict[str, str]]:
    """The `workspaces` of a `GET /users/me` answer as `gid`/`name` strings; entries that are
    not objects are ignored (Asana's schema: a list of compact workspaces)."""
    listed = me.get("workspaces")
    if not isinstance(listed, list):
        return []
    return [
        {"gid": str(w.get("gid") or ""), "name": str(w.get("name") or "")}
        for w in listed
        if isinstance(w, dict)
    ]


def _user_label(me: dict[str, Any]) -> str:
    return str(me.get("name") or me.get("gid") or "unknown user")


@sensitive_variables("token")
def token_workspaces(token: str) -> list[dict[str, str]]:
    """The workspaces a personal access token can connect ([{"gid", "name"}], by name), read
    with GET /workspaces within the interactive timeout (a person is waiting). Raises
    ConnectError with `clean_token`'s or `explain`'s sentence."""
    try:
        token = clean_token(token)
    except InvalidToken as exc:
        raise ConnectError(str(exc)) from None
    try:
        with AsanaClient(token, **interactive()) as client:
            found = [
                {"gid": str(w.get("gid") or ""), "name": str(w.get("name") or "")}
                for w in client.workspaces()
                if isinstance(w, dict)
            ]
    except AsanaError as exc:
        raise ConnectError(explain(exc)) from None
    return sorted(found, key=lambda w: (w["name"].lower(), w["gid"]))


@sensitive_variables("token")
def verify_workspace(token: str, workspace_gid: str) -> dict[str, Any]:
    """Check the token with Asana and return the workspace (`gid`, `name`) it can see.

    Raises ConnectError (nothing saved) for a malformed GID or token (tokens.clean_token),
    an error from Asana, or a workspace the token's user is not a member of.
    """
    workspace_gid = validate_gid(workspace_gid)
    try:
        token = clean_token(token)
    except InvalidToken as exc:
        raise ConnectError(str(exc)) from None
    try:
        with AsanaClient(token, **interactive()) as client:
            me = client.me()
    except AsanaError as exc:
        raise ConnectError(explain(exc)) from None
    workspaces = _workspaces(me)
    for workspace in workspaces:
        if workspace["gid"] == workspace_gid:
            return {"gid": workspace_gid, "name": workspace["name"]}
    visible = ", ".join(f"{w['name'] or '?'} ({w['gid']})" for w in workspaces) or "none"
    raise ConnectError(
        f"The token's user ({_user_label(me)}) is not a member of workspace "
        f"{workspace_gid}. Workspaces this token can see: {visible}. Use one of these GIDs, "
        "or a token of a member of that workspace."
    )


# What a new connection gets for a setting the caller did not give (None = "not given").
CONNECT_DEFAULTS: dict[str, Any] = {
    "pilot_tag": "pilot",
    "poll_interval": 30,
    "polling_enabled": True,
    "skip_backlog": False,
    "watch_method": AsanaConnection.WatchMethod.TAG_LIST,
}


@sensitive_variables("token")
def connect_workspace(
    token: str,
    workspace_gid: str,
    *,
    pilot_tag: str | None = None,
    poll_interval: int | None = None,
    polling_enabled: bool | None = None,
    skip_backlog: bool | None = None,
    watch_method: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> AsanaConnection:
    """Verify `token` against `workspace_gid`, then create or update that connection.

    A setting left as None is "not given": a new connection takes its default from
    CONNECT_DEFAULTS, an existing one keeps its stored value. The token is always replaced.
    """
    if pilot_tag is not None:
        pilot_tag = pilot_tag.strip()
        if not pilot_tag or len(pilot_tag) > 100:
            raise ConnectError(
                "The pilot tag name must be 1 to 100 characters (the default is `pilot`)."
            )
    if poll_interval is not None and poll_interval < 5:
        raise ConnectError("The poll interval must be at least 5 seconds.")
    if watch_method is not None and watch_method not in AsanaConnection.WatchMethod.values:
        raise ConnectError(
            f"Unknown watch method {watch_method!r}: use one of "
            f"{', '.join(AsanaConnection.WatchMethod.values)}."
        )
    given = {
        name: value
        for name, value in {
            "pilot_tag": pilot_tag,
            "poll_interval": poll_interval,
            "polling_enabled": polling_enabled,
            "skip_backlog": skip_backlog,
            "watch_method": watch_method,
        }.items()
        if value is not None
    }
    workspace = verify_workspace(token, workspace_gid)
    with transaction.atomic():
        connection = (
            AsanaConnection.objects.select_for_update()
            .filter(workspace_gid=workspace["gid"])
            .first()
        )
        created = connection is None
        if created:
            connection = AsanaConnection(workspace_gid=workspace["gid"])
            wanted = {**CONNECT_DEFAULTS, **given}
        else:
            wanted = given
            if "pilot_tag" in given and connection.pilot_tag != given["pilot_tag"]:
                # The cached tag GIDs belong to the old tag name.
                connection.tag_gids = {}
        for name, value in wanted.items():
            setattr(connection, name, value)
        connection.workspace_name = workspace["name"]
        connection.access_token = clean_token(token)
        connection.last_checked_at = timezone.now()
        connection.last_error = ""
        connection.full_clean()
        connection.save()
        polling = f"every {connection.poll_interval}s" if connection.polling_enabled else "off"
        audit.record(
            Action.CONNECTION_CREATE if created else Action.CONNECTION_UPDATE,
            target=str(connection),
            detail=(
                f"token {connection.masked_token}; pilot tag {connection.pilot_tag!r}; "
                f"polling {polling}; skip backlog {'yes' if connection.skip_backlog else 'no'}; "
                f"watch by {connection.get_watch_method_display()}"
            ),
            actor=actor,
            connection=connection,
        )
    return connection


def check_connection(
    connection: AsanaConnection, actor: AbstractBaseUser | None = None
) -> tuple[bool, str]:
    """Check the stored token still works for the workspace; record the result as health."""
    try:
        with client_for(connection, **interactive()) as client:
            me = client.me()
        gids = {w["gid"] for w in _workspaces(me)}
        if connection.workspace_gid in gids:
            ok, message = True, f"Connected as {_user_label(me)}."
        else:
            ok = False
            message = (
                f"The token's user is no longer a member of workspace {connection.workspace_gid}; "
                "connect again with a token of a member."
            )
    except AsanaError as exc:
        ok, message = False, explain(exc)
    message = redact(message, connection.access_token)
    connection.last_checked_at = timezone.now()
    connection.last_error = "" if ok else message
    connection.save(update_fields=["last_checked_at", "last_error", "updated_at"])
    audit.record(
        Action.CONNECTION_TEST,
        target=str(connection),
        outcome=AuditLog.Outcome.OK if ok else AuditLog.Outcome.ERROR,
        detail=message,
        actor=actor,
        connection=connection,
    )
    return ok, message


def update_settings(
    connection: AsanaConnection,
    *,
    pilot_tag: str,
    polling_enabled: bool,
    poll_interval: int,
    skip_backlog: bool,
    goals_sync_interval: int | None = None,
    watch_method: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> list[str]:
    """Change the card's settings; returns the names of the fields that changed. A setting
    given as None keeps its stored value."""
    wanted = {
        "pilot_tag": pilot_tag.strip(),
        "polling_enabled": polling_enabled,
        "poll_interval": poll_interval,
        "skip_backlog": skip_backlog,
    }
    if goals_sync_interval is not None:
        wanted["goals_sync_interval"] = goals_sync_interval
    if watch_method:
        wanted["watch_method"] = watch_method
    changed = [name for name, value in wanted.items() if getattr(connection, name) != value]
    if not changed:
        return []
    with transaction.atomic():
        if "pilot_tag" in changed:
            # The cached tag GIDs belong to the old tag names.
            connection.tag_gids = {}
        for name in changed:
            setattr(connection, name, wanted[name])
        connection.full_clean()
        connection.save()
        audit.record(
            Action.CONNECTION_SETTINGS,
            target=str(connection),
            detail="; ".join(f"{name} = {wanted[name]!r}" for name in changed),
            actor=actor,
            connection=connection,
        )
    return changed
