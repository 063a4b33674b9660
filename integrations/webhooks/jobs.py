"""django-q2 job for the periodic webhook health check (scheduled by `integrations.pipeline.jobs`).

Asana deletes a webhook whose deliveries have failed for 24 hours; checking every
15 minutes shows that on the card long before, and offers re-registration. Polling keeps
working as the fallback whatever the webhook state.
"""

from typing import Any

from integrations.models import AsanaConnection
from integrations.webhooks.registration import check_webhook_health, health_text, prune_deliveries

HEALTH_SCHEDULE = "pilotsite: check Asana webhooks"
HEALTH_MINUTES = 15


def check_all_webhooks() -> dict[str, Any]:
    """Check every connection that has webhook registrations; prune old replay digests."""
    results = {
        connection.workspace_gid: health_text(check_webhook_health(connection))
        for connection in AsanaConnection.objects.filter(webhooks__isnull=False).distinct()
    }
    return {"connections": results, "pruned_deliveries": prune_deliveries()}
