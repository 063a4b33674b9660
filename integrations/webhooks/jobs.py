"""django-q2 entry points of webhooks (thin): the periodic health check (scheduled by
`integrations.pipeline.jobs`) and the handling of one delivery (queued by the endpoint).

Asana deletes a webhook whose deliveries have failed for 24 hours; checking every
15 minutes shows that on the card long before, and offers re-registration. Polling keeps
working as the fallback whatever the webhook state.
"""

from dataclasses import dataclass
from typing import Any

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.runs import run_claimed
from integrations.webhooks.delivery import DeliveryOutcome, handle_events, prune_deliveries
from integrations.webhooks.health import check_webhook_health

HEALTH_SCHEDULE = "pilotsite: check Asana webhooks"
HEALTH_MINUTES = 15


@dataclass
class WebhookChecks:
    """The scheduled check's result: each checked connection's health line by workspace GID,
    and how many old replay digests were pruned."""

    connections: dict[str, str]
    pruned_deliveries: int


def check_all_webhooks() -> WebhookChecks:
    """Check every connection that has webhook registrations; prune old replay digests."""
    results = {
        connection.workspace_gid: check_webhook_health(connection).text()
        for connection in AsanaConnection.objects.filter(webhooks__isnull=False).distinct()
    }
    return WebhookChecks(connections=results, pruned_deliveries=prune_deliveries())


def handle_delivery(registration_id: int, events: list[dict[str, Any]]) -> DeliveryOutcome:
    """Queued by the endpoint for each accepted delivery: act on its events
    (`delivery.handle_events`), then run the task it claimed last here, in this job (the
    others are queued): a newly tagged task starts without a second wait in the queue.
    Safe to run twice, since every claim is conditional."""
    return handle_events(registration_id, events, run_here=_run_here)


def _run_here(processed: ProcessedTask, task: dict[str, Any]) -> None:
    run_claimed(processed.pk, processed.claimed_by, task=task)
