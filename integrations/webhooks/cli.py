"""`manage.py asana webhook register|list|delete`: the `webhook` group of the asana command."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.management.cli import Subcommand, add_workspace_option, connection_for
from integrations.models import WebhookRegistration
from integrations.webhooks.health import check_webhook_health
from integrations.webhooks.registration import (
    WebhookError,
    delete_webhook,
    mask_hook_ids,
    register_webhook,
)


def _arguments(parser: CommandParser) -> None:
    actions = parser.add_subparsers(dest="webhook_action", required=True, metavar="ACTION")
    register = actions.add_parser("register", help="register a webhook for a resource (project)")
    add_workspace_option(register, required=True)
    register.add_argument("--resource", metavar="GID", required=True, help="e.g. a project GID")
    register.add_argument(
        "--public-url",
        metavar="URL",
        required=True,
        help="this site's base URL as Asana reaches it, e.g. https://pilot.example.com",
    )
    listing = actions.add_parser("list", help="list webhook registrations")
    add_workspace_option(listing)
    listing.add_argument(
        "--check", action="store_true", help="ask Asana first and update the states"
    )
    delete = actions.add_parser("delete", help="delete a webhook in Asana and here")
    delete.add_argument("webhook_gid", metavar="GID", help="the webhook GID shown by `list`")


def _register(command: BaseCommand, options: dict[str, Any]) -> None:
    connection = connection_for(options["workspace"])
    assert connection is not None  # `register` requires --workspace
    try:
        registration = register_webhook(connection, options["resource"], options["public_url"])
    except WebhookError as exc:
        raise CommandError(str(exc)) from None
    command.stdout.write(
        f"Webhook {registration.webhook_gid} registered for resource {registration.resource_gid}: "
        f"{registration.get_state_display()}; target {mask_hook_ids(registration.target_url)}"
    )


def _list(command: BaseCommand, options: dict[str, Any]) -> None:
    registrations = WebhookRegistration.objects.select_related("connection").order_by(
        "connection__workspace_gid", "resource_gid"
    )
    connection = connection_for(options["workspace"])
    if connection is not None:
        registrations = registrations.filter(connection=connection)
    if options["check"]:
        checked = {r.connection for r in registrations}
        for each in sorted(checked, key=lambda c: c.workspace_gid):
            command.stdout.write(f"{each}: {check_webhook_health(each).text()}")
    if not registrations:
        command.stdout.write("No webhooks registered.")
        return
    for r in registrations:
        last = f"{r.last_delivery_at:%Y-%m-%d %H:%M:%S}" if r.last_delivery_at else "never"
        contact = f"{r.last_contact_at:%Y-%m-%d %H:%M:%S}" if r.last_contact_at else "never"
        command.stdout.write(
            f"{r.webhook_gid or '(none)':>20}  resource {r.resource_gid}  "
            f"{r.get_state_display()}  last delivery {last}  last contact {contact}  "
            f"workspace {r.connection.workspace_gid}"
            + (f"\n{'':>22}{r.last_error}" if r.last_error else "")
        )


def _delete(command: BaseCommand, options: dict[str, Any]) -> None:
    gid = options["webhook_gid"].strip()
    registration = WebhookRegistration.objects.filter(webhook_gid=gid).first()
    if registration is None:
        raise CommandError(f"No webhook {gid} is registered here; see `asana webhook list`.")
    try:
        delete_webhook(registration)
    except WebhookError as exc:
        raise CommandError(str(exc)) from None
    command.stdout.write(f"Webhook {gid} on resource {registration.resource_gid} deleted.")


def _handle(command: BaseCommand, options: dict[str, Any]) -> None:
    {"register": _register, "list": _list, "delete": _delete}[options["webhook_action"]](
        command, options
    )


WEBHOOK = Subcommand("register, list or delete Asana webhooks", _handle, _arguments)
