"""Asana webhooks: registration, health, deliveries, the endpoint (views, urls), jobs,
admin views, card and CLI."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `integrations.webhooks.handle_delivery` is the delivery job's dotted path from before
    # webhooks became a package: tasks queued under it before an upgrade still run, for one
    # release. Imported on demand, so importing the package loads no models.
    if name == "handle_delivery":
        from integrations.webhooks.jobs import handle_delivery

        return handle_delivery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
