"""What the webhooks part of an Asana card shows (placeholder; replaced by the webhooks work)."""

from typing import Any

from integrations.models import AsanaConnection


def card(connection: AsanaConnection) -> dict[str, Any]:
    return {}
