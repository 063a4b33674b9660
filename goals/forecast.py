"""Forecast and flags for one goal, from its stored history: plain functions, no database.

Progress is the goal's progress as Asana draws it: 0 at the metric's initial value, 1 at its
target (goals.fields.progress). Every figure below is in those units, so "100 %" means
"the target is reached".

- **Observations**: the goal's snapshots (change points, goals.history) plus the value the
  last sync confirmed (`observed_until`, the employee's last sync): between two snapshots the
  value held, so an unchanged goal synced daily still has two observations.
- **Pace** (progress per week): the least-squares slope over the observations in the last
  `PACE_WINDOW_DAYS` (28) days up to `observed_until`; the value held when the window opened
  (the last snapshot before it) counts as an observation at the window's start.
- **Not enough history yet**: fewer than two observations, or less than `MIN_HISTORY_DAYS`
  (3) days between the first and the last; then there is no pace and no projection.
- **Needed pace**: what is left (1 - progress now) divided by the weeks left to the deadline.
- **Projection**: progress now + pace x weeks left (never below 0), as a fraction of the
  target; with no time left it is the progress now. Its label: **likely** at 100 % or more,
  **at risk** from 80 % to below 100 %, **unlikely** below 80 % (`LIKELY_AT`, `AT_RISK_AT`).
- **Flags** (open goals only): *stalled* — it has a metric, is below its target, and its
  progress has not changed for `stalled_days` (default `GOALS_STALLED_DAYS`, 14) up to the
  last sync; *overdue* — today is after the deadline; *projected to miss* — the projection is
  below 100 %. A goal without a metric gets *overdue* only (status and dates).
"""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

PACE_WINDOW_DAYS = 28
MIN_HISTORY_DAYS = 3
LIKELY_AT = 1.0
AT_RISK_AT = 0.8

NOT_ENOUGH_HISTORY = "not enough history yet"
NO_TARGET = "no target"
NO_DEADLINE = "no deadline"

STALLED = "stalled"
OVERDUE = "overdue"
PROJECTED_TO_MISS = "projected to miss"
FLAGS = (OVERDUE, PROJECTED_TO_MISS, STALLED)

# (when, progress 0-1) — a snapshot's time and its progress value.
Point = tuple[datetime.datetime, float]

_DAY = 86400.0


@dataclass(frozen=True)
class Forecast:
    """The forecast of one goal. `pace` and `needed_pace` are progress per week (0-1 units);
    `projection` is the progress expected at the deadline (1.0 = the target); `label` is
    "likely", "at risk", "unlikely" or "" when there is no projection, and `note` then says
    why (NOT_ENOUGH_HISTORY, NO_TARGET, NO_DEADLINE). `points` are the observations used."""

    pace: float | None = None
    needed_pace: float | None = None
    projection: float | None = None
    label: str = ""
    note: str = ""
    points: tuple[Point, ...] = ()


def slope_per_day(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (x in days). Needs two distinct x values."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def observations(
    snapshots: Sequence[Point], observed_until: datetime.datetime | None
) -> list[Point]:
    """The snapshots in time order, plus the last confirmed value at `observed_until`."""
    points = sorted(snapshots)
    if points and observed_until is not None and observed_until > points[-1][0]:
        points.append((observed_until, points[-1][1]))
    return points


def windowed(points: Sequence[Point], window_days: int = PACE_WINDOW_DAYS) -> list[Point]:
    """The observations of the last `window_days` up to the last one; the value held when the
    window opened is carried in as an observation at its start."""
    if not points:
        return []
    start = points[-1][0] - datetime.timedelta(days=window_days)
    before = [p for p in points if p[0] < start]
    inside = [p for p in points if p[0] >= start]
    return ([(start, before[-1][1])] if before else []) + inside


def label_for(projection: float) -> str:
    if projection >= LIKELY_AT:
        return "likely"
    if projection >= AT_RISK_AT:
        return "at risk"
    return "unlikely"


def forecast(
    snapshots: Sequence[Point],
    observed_until: datetime.datetime | None,
    *,
    has_target: bool,
    deadline: datetime.date | None,
    today: datetime.date,
) -> Forecast:
    """The goal's pace, needed pace and projection (see the module's docstring)."""
    if not has_target:
        return Forecast(note=NO_TARGET)
    points = windowed(observations(snapshots, observed_until))
    if len(points) < 2 or (points[-1][0] - points[0][0]).total_seconds() < MIN_HISTORY_DAYS * _DAY:
        return Forecast(note=NOT_ENOUGH_HISTORY, points=tuple(points))
    origin = points[0][0]
    pace = 7 * slope_per_day([((t - origin).total_seconds() / _DAY, y) for t, y in points])
    now = points[-1][1]
    if deadline is None:
        return Forecast(pace=pace, note=NO_DEADLINE, points=tuple(points))
    weeks_left = max(0, (deadline - today).days) / 7
    needed = (max(0.0, 1 - now) / weeks_left) if weeks_left else None
    projection = max(0.0, now + pace * weeks_left)
    return Forecast(
        pace=pace,
        needed_pace=needed,
        projection=projection,
        label=label_for(projection),
        points=tuple(points),
    )


def progress_unchanged_since(snapshots: Sequence[Point]) -> datetime.datetime | None:
    """When the current progress value was first recorded (the start of the latest run of
    equal values), or None without snapshots."""
    points = sorted(snapshots)
    if not points:
        return None
    since = points[-1][0]
    for when, value in reversed(points):
        if value != points[-1][1]:
            break
        since = when
    return since


def flags(
    snapshots: Sequence[Point],
    observed_until: datetime.datetime | None,
    *,
    closed: bool,
    has_target: bool,
    deadline: datetime.date | None,
    today: datetime.date,
    result: Forecast,
    stalled_days: int,
) -> list[str]:
    """The goal's flags, in FLAGS order (see the module's docstring); none for a closed goal."""
    if closed:
        return []
    found = set()
    if deadline is not None and today > deadline:
        found.add(OVERDUE)
    if has_target:
        if result.projection is not None and result.projection < LIKELY_AT:
            found.add(PROJECTED_TO_MISS)
        since = progress_unchanged_since(snapshots)
        current = sorted(snapshots)[-1][1] if snapshots else None
        if (
            since is not None
            and observed_until is not None
            and current is not None
            and current < 1
            and (observed_until - since).total_seconds() >= stalled_days * _DAY
        ):
            found.add(STALLED)
    return [f for f in FLAGS if f in found]
