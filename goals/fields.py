"""Turn Asana goal fields into ours: status, description text, dates and the metric.

Asana's `Goal.status` (asana_oas.yaml, GoalResponse.status) is `green`, `yellow` or `red`
while a goal is open ("On Track", "At Risk", "Off Track"), `achieved`, `partial`, `missed`
or `dropped` once it is closed, or null. The issue's table names the closed values and a few
words Asana does not send for goals (kept so a status-update style value still maps).
"""

import datetime
import re
from html.parser import HTMLParser
from typing import Any

from goals.models import DESCRIPTION_MAX, GoalStatus

STATUS_MAP: dict[str, str] = {
    # Open goals, as Asana reports them.
    "green": GoalStatus.ON_TRACK,
    "yellow": GoalStatus.AT_RISK,
    "red": GoalStatus.OFF_TRACK,
    # Closed goals, and the table.
    "achieved": GoalStatus.COMPLETED,
    "completed": GoalStatus.COMPLETED,
    "done": GoalStatus.COMPLETED,
    "at_risk": GoalStatus.AT_RISK,
    "behind": GoalStatus.AT_RISK,
    "partial": GoalStatus.AT_RISK,
    "off_track": GoalStatus.OFF_TRACK,
    "missed": GoalStatus.OFF_TRACK,
    "dropped": GoalStatus.OFF_TRACK,
}

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
)
# `GET /goal_relationships` names the sub-goal; its status and dates come from the goal list.
RELATIONSHIP_OPT_FIELDS = ("resource_subtype", "supporting_resource", "supporting_resource.name")


def map_status(asana_status: str | None) -> str:
    return STATUS_MAP.get((asana_status or "").strip().lower(), GoalStatus.ON_TRACK)


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _TextExtractor(HTMLParser):
    # Blocks start and end a line. A list item only starts one, so a list reads one item a
    # line instead of one item every other line.
    _LINE_BEFORE = frozenset({"br", "p", "li", "hr", "blockquote", "pre", *_HEADINGS})
    _LINE_AFTER = frozenset({"p", "ul", "ol", "blockquote", "pre", *_HEADINGS})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._LINE_BEFORE:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._LINE_AFTER:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str | None, limit: int = DESCRIPTION_MAX) -> str:
    """Plain text of Asana rich text, whitespace tidied, cut to `limit` characters."""
    if not html:
        return ""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [
        re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip()
        for line in "".join(parser.parts).split("\n")
    ]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


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


def _shared_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The columns a goal and a key result (itself an Asana goal) have in common."""
    return {
        "name": str(raw.get("name") or "(untitled goal)")[:500],
        "status": map_status(raw.get("status")),
        "asana_status": str(raw.get("status") or "")[:32],
        "due_on": parse_date(raw.get("due_on")),
    }


def goal_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Our columns for one goal record from `GET /goals`."""
    return {
        **_shared_fields(raw),
        "description": html_to_text(raw.get("html_notes")),
        "start_on": parse_date(raw.get("start_on")),
        **metric_fields(raw.get("metric")),
    }


def key_result_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Our columns for a sub-goal kept as a key result."""
    return {**_shared_fields(raw), "progress": metric_fields(raw.get("metric"))["progress"]}


def owner_gid(raw: dict[str, Any]) -> str | None:
    owner = raw.get("owner")
    return str(owner["gid"]) if isinstance(owner, dict) and owner.get("gid") else None
