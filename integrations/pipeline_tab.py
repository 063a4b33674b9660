"""What the pipeline part of an Asana card shows (placeholder; replaced by the pipeline work)."""

from typing import Any

from integrations.models import AsanaConnection


def card(connection: AsanaConnection) -> dict[str, Any]:
    return {}
