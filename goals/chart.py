"""A goal's progress chart as a small inline SVG, drawn on the server (no script, no request
from the browser): the recorded progress as steps (it held between snapshots), the target as
a dotted line at 100 %, and the pace line from the last observation to the deadline, dashed.
"""

import datetime
import itertools

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from goals.forecast import Forecast

WIDTH, HEIGHT, PAD = 220, 56, 4


def _x(when: datetime.datetime, start: datetime.datetime, span: float) -> float:
    return PAD + (WIDTH - 2 * PAD) * (when - start).total_seconds() / span


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * max(0.0, value) / top


def progress_svg(result: Forecast, deadline: datetime.date | None, label: str) -> SafeString:
    """The chart for a forecast's observations; empty when there are fewer than two."""
    points = list(result.points)
    if len(points) < 2:
        return mark_safe("")
    start, last_at = points[0][0], points[-1][0]
    end = last_at
    projection = result.projection
    if projection is not None and deadline is not None:
        deadline_at = datetime.datetime.combine(
            deadline, datetime.time(23, 59), tzinfo=last_at.tzinfo
        )
        end = max(end, deadline_at)
    span = max((end - start).total_seconds(), 1.0)
    top = max([1.0, *(v for _, v in points), result.projection or 0.0]) * 1.05
    steps = [f"{_x(points[0][0], start, span):.1f},{_y(points[0][1], top):.1f}"]
    for (_, previous), (when, value) in itertools.pairwise(points):
        x = _x(when, start, span)
        steps.append(f"{x:.1f},{_y(previous, top):.1f}")
        steps.append(f"{x:.1f},{_y(value, top):.1f}")
    target_y = _y(1.0, top)
    pace = ""
    if projection is not None and deadline is not None:
        pace = format_html(
            '<line class="goal-chart-pace" x1="{}" y1="{}" x2="{}" y2="{}"/>',
            f"{_x(last_at, start, span):.1f}",
            f"{_y(points[-1][1], top):.1f}",
            f"{_x(end, start, span):.1f}",
            f"{_y(projection, top):.1f}",
        )
    return format_html(
        '<svg class="goal-chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{label}"><title>{label}</title>'
        '<line class="goal-chart-target" x1="{p}" y1="{ty}" x2="{xe}" y2="{ty}"/>'
        '<polyline class="goal-chart-progress" points="{steps}"/>{pace}</svg>',
        w=WIDTH,
        h=HEIGHT,
        p=PAD,
        xe=WIDTH - PAD,
        ty=f"{target_y:.1f}",
        steps=" ".join(steps),
        pace=pace,
        label=label,
    )
