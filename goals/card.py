"""The goals lines of an Asana connection card on the integrations tab."""

from typing import Any

from goals.models import GoalSync
from integrations.models import AsanaConnection


def card(connection: AsanaConnection) -> dict[str, Any]:
    """The latest goal sync of the connection: running progress, or its outcome and error."""
    latest = GoalSync.objects.filter(connection=connection).first()
    return {"last_sync": latest, "interval_hours": connection.goals_sync_interval / 3600}
