"""django-q2 job for the periodic webhook health check (scheduled by `integrations.pipeline.jobs`).

Asana deletes a webhook whose deliveries have failed for 24 hours; checking every
15 minutes shows that on the card long before, and offers re-registration. Polling keeps
working as the fallback whatever the webhook state.
"""

from dataclasses import dataclass

from integrations.models import AsanaConnection
from integrations.webhooks.registration import check_webhook_health, prune_deliveries

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
