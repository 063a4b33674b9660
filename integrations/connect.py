"""Connecting a workspace: verify a token with Asana, then create or update the connection.

Everything is checked with Asana before anything is written, so a wrong token, an unknown
workspace or an Asana outage leaves the database exactly as it was.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
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


@dataclass(frozen=True)
class Workspace:
    """An Asana workspace as a token sees it: its GID and its name."""

    gid: str
    name: str


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


def _as_workspaces(listed: Any) -> list[Workspace]:
    """Compact workspaces as Asana lists them (`GET /workspaces`, the `workspaces` of
    `GET /users/me`); entries that are not objects are ignored."""
    if not isinstance(listed, list):
        return []
    return [
        Workspace(gid=str(w.get("gid") or ""), name=str(w.get("name") or ""))
        for w in listed
        if isinstance(w, dict)
    ]


def _user_label(me: dict[str, Any]) -> str:
    return str(me.get("name") or me.get("gid") or "unknown user")


@sensitive_variables("token")
def _checked_token(token: str) -> str:
    try:
        return clean_token(token)
    except InvalidToken as exc:
        raise ConnectError(str(exc)) from None


@sensitive_variables("token")
def token_workspaces(token: str) -> list[Workspace]:
    """The workspaces a personal access token can connect, by name, read with
    GET /workspaces within the interactive timeout (a person is waiting). Raises
    ConnectError with `clean_token`'s or `explain`'s sentence."""
    token = _checked_token(token)
    try:
        with AsanaClient(token, **interactive()) as client:
            found = _as_workspaces(list(client.workspaces()))
    except AsanaError as exc:
        raise ConnectError(explain(exc)) from None
    return sorted(found, key=lambda w: (w.name.lower(), w.gid))


@sensitive_variables("token")
def verify_workspace(token: str, workspace_gid: str) -> Workspace:
    """Check the token with Asana and return the workspace it can see.

    Raises ConnectError (nothing saved) for a malformed GID or token (tokens.clean_token),
    an error from Asana, or a workspace the token's user is not a member of.
    """
    workspace_gid = validate_gid(workspace_gid)
    token = _checked_token(token)
    try:
        with AsanaClient(token, **interactive()) as client:
            me = client.me()
    except AsanaError as exc:
        raise ConnectError(explain(exc)) from None
    workspaces = _as_workspaces(me.get("workspaces"))
    for workspace in workspaces:
        if workspace.gid == workspace_gid:
            return workspace
    visible = ", ".join(f"{w.name or '?'} ({w.gid})" for w in workspaces) or "none"
    raise ConnectError(
        f"The token's user ({_user_label(me)}) is not a member of workspace "
        f"{workspace_gid}. Workspaces this token can see: {visible}. Use one of these GIDs, "
        "or a token of a member of that workspace."
    )


def setting_default(name: str) -> Any:
    """What a new connection gets for the setting `name`: the model field's default."""
    field = AsanaConnection._meta.get_field(name)
    assert isinstance(field, models.Field)  # settings are concrete fields
    return field.get_default()


def clean_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given (a value of None is "not given" and dropped), each checked by its
    model field's own rules (AsanaConnection's validators) and a tag name stripped. Raises
    ConnectError with every problem, before anything is asked of Asana or written."""
    cleaned: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in given.items():
        if value is None:
            continue
        if name not in AsanaConnection.SETTINGS:
            raise ValueError(f"{name} is not a connection setting")
        field = AsanaConnection._meta.get_field(name)
        assert isinstance(field, models.Field)  # settings are concrete fields
        try:
            cleaned[name] = field.clean(value.strip() if isinstance(value, str) else value, None)
        except ValidationError as exc:
            problems.extend(exc.messages)
    if problems:
        raise ConnectError(" ".join(dict.fromkeys(problems)))
    return cleaned


@dataclass
class SavedConnection:
    """What `save_connection` did: the connection as saved, whether it was `created`, and
    the names of the settings that `changed` (for a new connection: those given)."""

    connection: AsanaConnection
    created: bool
    changed: list[str] = field(default_factory=list)


def _summary(connection: AsanaConnection) -> str:
    polling = f"every {connection.poll_interval}s" if connection.polling_enabled else "off"
    return (
        f"token {connection.masked_token}; pilot tag {connection.pilot_tag!r}; "
        f"polling {polling}; skip backlog {'yes' if connection.skip_backlog else 'no'}; "
        f"watch method {connection.get_watch_method_display()}; "
        f"rollout mode {connection.get_rollout_mode_display()}"
    )


@sensitive_variables("token")
def save_connection(
    connection: AsanaConnection,
    *,
    settings: Mapping[str, Any] | None = None,
    token: str = "",
    workspace: Workspace | None = None,
    actor: audit.Actor = None,
) -> SavedConnection:
    """The one write path for a connection's settings and token (the card, the admin form
    and `asana connect` all come here).

    `connection` is a stored connection, or a new unsaved one with its `workspace_gid`.
    `settings` are those given (see `clean_settings`); the others keep their stored values,
    or the field defaults on a new connection. A new `token` must come with the `workspace`
    `verify_workspace` returned for it: the token, the workspace's name and a healthy check
    are stored together. The cached tag GIDs are cleared when the pilot tag differs from the
    stored one (they belong to the old name). One audit row: `connection.create`,
    `connection.update` (a token) or `connection.settings`; none when nothing changed.
    Raises ConnectError for a setting the model refuses; nothing is written then.
    """
    if token and workspace is None:
        raise ValueError("a new token needs the workspace verify_workspace returned for it")
    wanted = clean_settings(settings or {})
    with transaction.atomic():
        created = connection.pk is None
        if created:
            stored = {name: setting_default(name) for name in AsanaConnection.SETTINGS}
        else:
            # The database's values, not the instance's: a ModelForm has already copied
            # what was typed onto the instance it hands over.
            stored = (
                AsanaConnection.objects.select_for_update()
                .filter(pk=connection.pk)
                .values(*AsanaConnection.SETTINGS)
                .get()
            )
        changed = [name for name, value in wanted.items() if created or stored[name] != value]
        if not created and "pilot_tag" in changed:
            connection.tag_gids = {}
        for name, value in {**stored, **wanted}.items():
            setattr(connection, name, value)
        if token:
            connection.access_token = _checked_token(token)
            connection.workspace_name = workspace.name if workspace else ""
            connection.last_checked_at, connection.last_error = timezone.now(), ""
        elif not changed:
            return SavedConnection(connection, created=False)
        try:
            connection.full_clean()
        except ValidationError as exc:
            raise ConnectError(" ".join(exc.messages)) from None
        connection.save()
        if created or token:
            action, detail = (
                Action.CONNECTION_CREATE if created else Action.CONNECTION_UPDATE,
                _summary(connection),
            )
        else:
            action = Action.CONNECTION_SETTINGS
            detail = "; ".join(f"{name} = {wanted[name]!r}" for name in changed)
        audit.record(
            action, target=str(connection), detail=detail, actor=actor, connection=connection
        )
    return SavedConnection(connection, created, changed)


@sensitive_variables("token")
def connect_workspace(
    token: str,
    workspace_gid: str,
    *,
    actor: audit.Actor = None,
    **settings: Any,
) -> AsanaConnection:
    """Verify `token` against `workspace_gid`, then create or update that connection through
    `save_connection` (`settings` as there: None is "not given"). The token always replaces
    the stored one. Raises ConnectError, with nothing written, for a bad setting (checked
    before Asana is asked), a bad token or GID, or a workspace the token cannot see."""
    clean_settings(settings)
    workspace = verify_workspace(token, workspace_gid)
    with transaction.atomic():
        connection = (
            AsanaConnection.objects.select_for_update().filter(workspace_gid=workspace.gid).first()
        ) or AsanaConnection(workspace_gid=workspace.gid)
        return save_connection(
            connection, settings=settings, token=token, workspace=workspace, actor=actor
        ).connection


def check_connection(connection: AsanaConnection, *, actor: audit.Actor = None) -> tuple[bool, str]:
    """Check the stored token still works for the workspace; record the result as health."""
    try:
        with client_for(connection, **interactive()) as client:
            me = client.me()
        gids = {w.gid for w in _as_workspaces(me.get("workspaces"))}
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
    connection: AsanaConnection, *, actor: audit.Actor = None, **settings: Any
) -> list[str]:
    """Change a connection's settings (the card's form); returns the names of those that
    changed. A setting given as None keeps its stored value. See `save_connection`."""
    return save_connection(connection, settings=settings, actor=actor).changed
