"""Turn Asana goal fields into ours: status, description text, dates and the metric.

A goal's `status` is kept exactly as Asana sends it (goals.models.GoalStatus lists Asana's
values and their names); its `html_notes` become plain text through the one rich-text
converter, integrations.asana.richtext.
"""

import datetime
from typing import Any

from goals.models import DESCRIPTION_MAX, GoalStatus
from integrations.asana.richtext import to_text

# Every field the sync reads from `GET /goals` (all in the endpoint's opt_fields enum).
GOAL_OPT_FIELDS = (
    "name",
    "owner",
    "html_notes",
    "due_on",
    "start_on",
    "status",
    "metric",
    "metric.initial_number_value",
    "metric.current_number_value",
    "metric.target_number_value",
    "metric.unit",
    "metric.currency_code",
    # asana_oas.yaml, GET /goals opt_fields enum: the goal's time period comes with it
    # (TimePeriodCompact: display_name such as "Q4 FY26", start_on, end_on), so a goal without
    # a due date still has a deadline without one more request.
    "time_period",
    "time_period.display_name",
    "time_period.end_on",
)
# `GET /goal_relationships` names the sub-goal; its status and dates come from the goal list.
RELATIONSHIP_OPT_FIELDS = ("resource_subtype", "supporting_resource", "supporting_resource.name")


def status_value(asana_status: Any) -> str:
    """The stored status for Asana's `status` value: the value itself ("" for null).

    A value Asana adds later is kept as sent (cut to the column's 16 characters) and shown
    as it is, rather than being read as one of today's statuses.
    """
    return str(asana_status or GoalStatus.NO_STATUS).strip()[:16]


def parse_date(value: Any) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def progress(initial: float | None, current: float | None, target: float | None) -> float | None:
    """How far current has moved from initial towards target, 0–1.

    Asana's metric has no progress field, so it is computed the way Asana draws the bar.
    """
    if current is None or target is None:
        return None
    start = initial or 0.0
    if target == start:
        return 1.0 if current >= target else 0.0
    return max(0.0, min(1.0, (current - start) / (target - start)))


def metric_fields(metric: dict[str, Any] | None) -> dict[str, Any]:
    """Our metric columns for a goal; all empty when the goal has no metric."""
    if not metric:
        return {
            "has_metric": False,
            "metric_initial": None,
            "metric_current": None,
            "metric_target": None,
            "metric_unit": "",
            "metric_currency": "",
            "progress": None,
        }
    initial = _number(metric.get("initial_number_value"))
    current = _number(metric.get("current_number_value"))
    target = _number(metric.get("target_number_value"))
    return {
        "has_metric": True,
        "metric_initial": initial,
        "metric_current": current,
        "metric_target": target,
        "metric_unit": str(metric.get("unit") or "")[:16],
        "metric_currency": str(metric.get("currency_code") or "")[:3],
        "progress": progress(initial, current, target),
    }


def time_period_fields(period: Any) -> dict[str, Any]:
    """The goal's Asana time period (`time_period`, nullable): its name and last day."""
    if not isinstance(period, dict):
        return {"time_period_name": "", "time_period_end_on": None}
    return {
        "time_period_name": str(period.get("display_name") or "")[:100],
        "time_period_end_on": parse_date(period.get("end_on")),
    }


def _shared_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The columns a goal and a key result (itself an Asana goal) have in common."""
    return {
        "name": str(raw.get("name") or "(untitled goal)")[:500],
        "status": status_value(raw.get("status")),
        "due_on": parse_date(raw.get("due_on")),
        **time_period_fields(raw.get("time_period")),
    }


def goal_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Our columns for one goal record from `GET /goals`."""
    return {
        **_shared_fields(raw),
        "description": to_text(raw.get("html_notes"), limit=DESCRIPTION_MAX),
        "start_on": parse_date(raw.get("start_on")),
        **metric_fields(raw.get("metric")),
    }


def key_result_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Our columns for a sub-goal kept as a key result."""
    metric = metric_fields(raw.get("metric"))
    return {
        **_shared_fields(raw),
        "progress": metric["progress"],
        "metric_current": metric["metric_current"],
        "metric_target": metric["metric_target"],
    }


def owner_gid(raw: dict[str, Any]) -> str | None:
    owner = raw.get("owner")
    return str(owner["gid"]) if isinstance(owner, dict) and owner.get("gid") else None
