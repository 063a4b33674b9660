"""`manage.py asana connect|status`: the Asana connection from the command line.

Other features add their subcommand groups as entries of `Command.subcommands`.
"""

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from integrations.asana.tokens import InvalidToken, clean_token
from integrations.connect import ConnectError, connect_workspace, setting_default
from integrations.management.cli import Subcommand, SubcommandsCommand
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import watch
from integrations.pipeline.executors import executor_description
from integrations.pipeline.tags import duplicate_tags_text
from integrations.webhooks.cli import WEBHOOK

TOKEN_VARIABLE = "ASANA_ACCESS_TOKEN"  # noqa: S105 (a variable name, not a secret)


def _token() -> str:
    # Never an argument: arguments end up in shell history and in `ps` output.
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        try:
            return clean_token(token)
        except InvalidToken as exc:
            raise CommandError(f"{TOKEN_VARIABLE}: {exc} Nothing was saved.") from None
    if sys.stdin.isatty():
        try:
            return clean_token(getpass.getpass("Asana personal access token (input hidden): "))
        except InvalidToken as exc:
            raise CommandError(f"{exc} Nothing was saved.") from None
    raise CommandError(
        f"Set {TOKEN_VARIABLE} to the personal access token, or run the command in a terminal "
        "to be asked for it (it is never accepted as an argument)."
    )


def _connect_arguments(parser: CommandParser) -> None:
    # Defaults are None ("not given"): a new connection gets the service's defaults, an
    # existing one keeps its stored values, so re-running connect to rotate the token
    # changes nothing else.
    parser.add_argument("--workspace", metavar="GID", required=True, help="the workspace GID")
    parser.add_argument(
        "--pilot-tag",
        metavar="NAME",
        default=None,
        help=f"default for a new connection: {setting_default('pilot_tag')}; "
        "otherwise unchanged unless given",
    )
    parser.add_argument(
        "--poll-interval",
        metavar="SECONDS",
        type=int,
        default=None,
        help=f"default for a new connection: {setting_default('poll_interval')}; "
        "otherwise unchanged unless given",
    )
    polling = parser.add_mutually_exclusive_group()
    polling.add_argument(
        "--polling",
        dest="polling_enabled",
        action="store_const",
        const=True,
        default=None,
        help="poll this workspace (the default for a new connection)",
    )
    polling.add_argument(
        "--no-polling",
        dest="polling_enabled",
        action="store_const",
        const=False,
        default=None,
        help="do not poll this workspace",
    )
    parser.add_argument(
        "--skip-backlog",
        action="store_const",
        const=True,
        default=None,
        help="record tasks that already carry the pilot tag as skipped instead of running them",
    )
    _watch_argument(parser)
    parser.add_argument(
        "--mode",
        dest="rollout_mode",
        choices=AsanaConnection.RolloutMode.values,
        default=None,
        help="rollout mode: automatic (run and report in Asana), shadow (run, write nothing to "
        "Asana, show what would have been posted in the admin), approval (a claimed task waits "
        "for an approver); default for a new connection: automatic; otherwise unchanged "
        "unless given",
    )


def _watch_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--watch",
        dest="watch_method",
        choices=AsanaConnection.WatchMethod.values,
        default=None,
        help="how polling finds tagged tasks: auto (search, one request per idle poll, where "
        "the plan has it; else the tag list), tag_list (every tagged task each poll; no "
        "indexing delay), webhooks_first (slower polling while a webhook is healthy); default "
        "for a new connection: auto; otherwise unchanged unless given",
    )


def connect(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        connection = connect_workspace(
            _token(),
            options["workspace"],
            pilot_tag=options["pilot_tag"],
            poll_interval=options["poll_interval"],
            polling_enabled=options["polling_enabled"],
            skip_backlog=options["skip_backlog"],
            watch_method=options["watch_method"],
            rollout_mode=options["rollout_mode"],
        )
    except ConnectError as exc:
        raise CommandError(str(exc)) from None
    polling = f"every {connection.poll_interval} s" if connection.polling_enabled else "off"
    command.stdout.write(
        f"Connected {connection}: token {connection.masked_token}, pilot tag "
        f"'{connection.pilot_tag}', polling {polling}, watch method "
        f"{connection.get_watch_method_display()}, rollout mode "
        f"{connection.get_rollout_mode_display()}."
    )


def _health(connection: AsanaConnection) -> str:
    if connection.last_checked_at is None:
        return "not checked yet"
    when = f"{connection.last_checked_at:%Y-%m-%d %H:%M:%S %Z}"
    return f"error at {when}: {connection.last_error}" if connection.last_error else f"ok at {when}"


def _automation(connection: AsanaConnection) -> str:
    """The safety rails' line: paused (since when, why) or armed, with the thresholds."""
    if connection.paused_at is not None:
        since = f"{connection.paused_at:%Y-%m-%d %H:%M:%S %Z}"
        then = (
            f"probing Asana every {connection.breaker_cooldown} s"
            if connection.pause_kind == AsanaConnection.PauseKind.ERRORS
            else "resume it on the card"
        )
        return f"PAUSED since {since}: {connection.pause_reason} ({then})"
    return (
        f"running; pauses above {connection.breaker_error_percent} % Asana errors "
        f"(of {connection.breaker_min_requests}+ requests in {connection.breaker_error_window} s), "
        f"after {connection.breaker_failures} failed runs in a row or "
        f"{connection.breaker_claims_per_hour} claims in an hour"
    )


def status(command: BaseCommand, options: dict[str, Any]) -> None:
    command.stdout.write(f"Executor: {executor_description()}")
    connections = list(AsanaConnection.objects.all())
    if not connections:
        command.stdout.write(
            "No Asana workspace is connected: run `manage.py asana connect --workspace GID`."
        )
        return
    counts: dict[int, dict[str, int]] = {}
    for row in ProcessedTask.objects.values("connection_id", "state").annotate(n=Count("id")):
        counts.setdefault(row["connection_id"], {})[row["state"]] = row["n"]
    for connection in connections:
        by_state = counts.get(connection.pk, {})
        tasks = ", ".join(
            f"{state} {by_state.get(state, 0)}" for state in ProcessedTask.State.values
        )
        polling = f"every {connection.poll_interval} s" if connection.polling_enabled else "off"
        last_poll = (
            f"{connection.last_poll_at:%Y-%m-%d %H:%M:%S %Z}: {connection.last_poll_result or '-'}"
            if connection.last_poll_at
            else "never"
        )
        command.stdout.write(
            f"{connection}\n"
            f"  health: {_health(connection)}\n"
            f"  automation: {_automation(connection)}\n"
            f"  polling: {polling}; pilot tag '{connection.pilot_tag}'\n"
            f"  watch: {watch.describe(connection)}\n"
            f"  rollout mode: {connection.get_rollout_mode_display()}\n"
            f"  last poll: {last_poll}\n"
            f"  executor: {connection.executor} — {executor_description(connection)}\n"
            f"  processed tasks: {tasks}"
        )
        duplicates = duplicate_tags_text(connection)
        if duplicates:
            command.stdout.write(f"  warning: {duplicates}")


class Command(SubcommandsCommand):
    help = "Connect Asana workspaces and show their status."
    subcommands = {
        "connect": Subcommand(
            "verify a token (from ASANA_ACCESS_TOKEN) and connect a workspace",
            connect,
            _connect_arguments,
        ),
        "status": Subcommand("show each connection's health, polling and task counts", status),
        "webhook": WEBHOOK,
    }
