"""What the webhooks part of an Asana card shows: the registrations and the register form."""

from typing import Any

from integrations.models import AsanaConnection, WebhookRegistration

ATTENTION = (WebhookRegistration.State.FAILING, WebhookRegistration.State.GONE)


def card(connection: AsanaConnection) -> dict[str, Any]:
    registrations = list(connection.webhooks.order_by("resource_gid", "-created_at"))
    return {
        "webhooks": [
            {
                "registration": r,
                "state_label": r.get_state_display(),
                "needs_attention": r.state in ATTENTION,
            }
            for r in registrations
        ],
        "deliveries_received": any(r.last_delivery_at for r in registrations),
        "webhooks_need_attention": sum(1 for r in registrations if r.state in ATTENTION),
        "last_health_check": max(
            (r.last_checked_at for r in registrations if r.last_checked_at), default=None
        ),
    }
