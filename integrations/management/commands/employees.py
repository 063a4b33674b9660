"""`manage.py employees import|automap`: employees and their Asana users from the command line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.management.cli import (
    Subcommand,
    SubcommandsCommand,
    add_workspace_option,
    connection_for,
)
from integrations.models import AsanaConnection
from integrations.people.csv_import import CsvImportError
from integrations.people.csv_import import import_employees_csv as import_csv
from integrations.people.mapping import MappingError, automap_by_email


def _import_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "file", metavar="FILE.csv", help="header email,name[,asana_user_gid][,manager]"
    )
    add_workspace_option(parser)


def import_file(command: BaseCommand, options: dict[str, Any]) -> None:
    connection = connection_for(options["workspace"])
    try:
        report = import_csv(options["file"], connection=connection)
    except CsvImportError as exc:
        raise CommandError(f"Nothing imported: {exc}.") from None
    command.stdout.write(f"Imported {options['file']}: {report.summary()}.")
    for rejected in report.rejected:
        command.stdout.write(f"  rejected {rejected}")
    if report.rejected:
        # Non-zero exit, so a script or cron job notices the rows left out.
        raise CommandError(
            f"{len(report.rejected)} row(s) rejected. Fix the rejected rows and import the "
            "file again: rows already imported are matched by email and updated, never "
            "duplicated."
        )


def automap(command: BaseCommand, options: dict[str, Any]) -> None:
    connection = connection_for(options["workspace"])
    connections = [connection] if connection else list(AsanaConnection.objects.all())
    if not connections:
        raise CommandError(
            "No Asana workspace is connected: run `manage.py asana connect --workspace GID`."
        )
    failed = False
    for connection in connections:
        try:
            mapped, remaining = automap_by_email(connection)
        except MappingError as exc:
            command.stderr.write(f"{connection}: {exc}")
            failed = True
            continue
        command.stdout.write(f"{connection}: mapped {len(mapped)} by email.")
        for mapping in mapped:
            command.stdout.write(f"  mapped {mapping.employee.email} → {mapping.asana_user_gid}")
        if remaining:
            command.stdout.write(f"  {len(remaining)} remain unmapped:")
            for employee in remaining:
                command.stdout.write(f"  unmapped {employee.email}")
    if failed:
        raise CommandError("Some workspaces could not be read from Asana; see above.")


class Command(SubcommandsCommand):
    help = "Import employees and map them to Asana users."
    subcommands = {
        "import": Subcommand(
            "create or update employees from a CSV file", import_file, _import_arguments
        ),
        "automap": Subcommand(
            "map unmapped employees to workspace users with the same email",
            automap,
            add_workspace_option,
        ),
    }
