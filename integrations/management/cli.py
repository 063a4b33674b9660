"""Shared plumbing for the `asana` and `employees` commands: subcommands as a dict of handlers,
so another feature adds its group by adding one entry."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.models import AsanaConnection
from pilotsite.untrusted import PrintableOutputCommand


@dataclass(frozen=True)
class Subcommand:
    help: str
    handle: Callable[[BaseCommand, dict[str, Any]], None]
    add_arguments: Callable[[CommandParser], None] = field(default=lambda parser: None)


class SubcommandsCommand(PrintableOutputCommand):
    subcommands: dict[str, Subcommand] = {}

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, spec in self.subcommands.items():
            spec.add_arguments(sub.add_parser(name, help=spec.help, description=spec.help))

    def handle(self, *args: Any, **options: Any) -> None:
        self.subcommands[options["subcommand"]].handle(self, options)


def add_workspace_option(parser: CommandParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--workspace",
        metavar="GID",
        required=required,
        help="the workspace GID of a connected workspace",
    )


def connection_for(workspace_gid: str | None) -> AsanaConnection | None:
    """The connection for `--workspace`, or None when the option was not given."""
    if not workspace_gid:
        return None
    connection = AsanaConnection.objects.filter(workspace_gid=workspace_gid.strip()).first()
    if connection is None:
        known = ", ".join(str(c) for c in AsanaConnection.objects.all()) or "none"
        raise CommandError(
            f"No connection for workspace {workspace_gid}. Connected: {known}. "
            "Connect it with `manage.py asana connect --workspace GID`."
        )
    return connection
