"""The goals section of each Asana connection card on the integrations tab (registered with
`integrations.card_sections` by the goals app)."""

from typing import Any

from goals.models import GoalSync
from integrations.models import AsanaConnection


def card(connection: AsanaConnection) -> dict[str, Any]:
    """The latest goal sync of the connection: running progress, or its outcome and error."""
    latest = GoalSync.objects.filter(connection=connection).first()
    return {"last_sync": latest, "interval_hours": connection.goals_sync_interval / 3600}


def busy(card: dict[str, Any]) -> bool:
    """Whether the latest goal sync runs or waits for a worker."""
    latest = card["last_sync"]
    return latest is not None and (latest.is_live or latest.state == GoalSync.State.QUEUED)
