"""The forecast arithmetic, pinned with cases computed by hand (progress in 0-1 units)."""

import datetime

import pytest

from goals.forecast import (
    NO_DEADLINE,
    NO_TARGET,
    NOT_ENOUGH_HISTORY,
    OVERDUE,
    PROJECTED_TO_MISS,
    STALLED,
    flags,
    forecast,
    label_for,
    windowed,
)

DAY0 = datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC)


def day(n: float) -> datetime.datetime:
    return DAY0 + datetime.timedelta(days=n)


def date(n: int) -> datetime.date:
    return (DAY0 + datetime.timedelta(days=n)).date()


def _forecast(points, observed_until, deadline_day=None, today_day=14, has_target=True):
    return forecast(
        [(day(d), v) for d, v in points],
        day(observed_until),
        has_target=has_target,
        deadline=None if deadline_day is None else date(deadline_day),
        today=date(today_day),
    )


def _flags(points, observed_until, deadline_day=None, today_day=14, closed=False, target=True):
    snapshots = [(day(d), v) for d, v in points]
    deadline = None if deadline_day is None else date(deadline_day)
    result = forecast(
        snapshots, day(observed_until), has_target=target, deadline=deadline, today=date(today_day)
    )
    return flags(
        snapshots,
        day(observed_until),
        closed=closed,
        has_target=target,
        deadline=deadline,
        today=date(today_day),
        result=result,
        stalled_days=14,
    )


def test_steady_pace_reaches_the_target_on_time():
    # 0.1 a week for two weeks; 7 weeks left need 0.7 more: 0.1 a week, projected 100 %.
    result = _forecast([(0, 0.1), (7, 0.2), (14, 0.3)], 14, deadline_day=63)

    assert result.pace == pytest.approx(0.1)
    assert result.needed_pace == pytest.approx(0.1)
    assert result.projection == pytest.approx(1.0)
    assert result.label == "likely"


def test_accelerating_progress_uses_the_least_squares_slope():
    # x = 0, 7, 14; y = 0, 0.1, 0.3: Sxy = 2.1, Sxx = 98, slope 0.15 a week.
    # Two weeks left: 0.3 + 0.3 = 0.6 -> unlikely; needed (1 - 0.3) / 2 = 0.35 a week.
    result = _forecast([(0, 0.0), (7, 0.1), (14, 0.3)], 14, deadline_day=28)

    assert result.pace == pytest.approx(0.15)
    assert result.needed_pace == pytest.approx(0.35)
    assert result.projection == pytest.approx(0.6)
    assert result.label == "unlikely"


def test_flat_progress_has_zero_pace_and_is_stalled_after_fourteen_days():
    # One snapshot, confirmed unchanged by the sync 20 days later.
    result = _forecast([(0, 0.4)], 20, deadline_day=48, today_day=20)

    assert result.pace == pytest.approx(0.0)
    assert result.projection == pytest.approx(0.4)
    assert _flags([(0, 0.4)], 20, deadline_day=48, today_day=20) == [PROJECTED_TO_MISS, STALLED]


def test_progress_unchanged_for_thirteen_days_is_not_stalled():
    assert STALLED not in _flags([(0, 0.4)], 13, deadline_day=200, today_day=13)


def test_a_status_change_does_not_restart_the_stalled_clock():
    # Rows at day 0 and day 10 carry the same progress (the status changed on day 10).
    assert STALLED in _flags([(0, 0.4), (10, 0.4)], 15, deadline_day=200, today_day=15)


def test_regressing_progress_has_a_negative_pace_and_never_projects_below_zero():
    # 0.5, 0.4, 0.3 a week apart: -0.1 a week; 4 weeks left: 0.3 - 0.4 -> 0.
    result = _forecast([(0, 0.5), (7, 0.4), (14, 0.3)], 14, deadline_day=42)

    assert result.pace == pytest.approx(-0.1)
    assert result.projection == 0.0
    assert result.label == "unlikely"


def test_a_goal_without_a_metric_has_no_forecast_and_only_date_flags():
    result = _forecast([(0, 0.0)], 20, deadline_day=10, today_day=20, has_target=False)

    assert (result.pace, result.projection, result.note) == (None, None, NO_TARGET)
    assert _flags([(0, 0.0)], 20, deadline_day=10, today_day=20, target=False) == [OVERDUE]


def test_past_the_deadline_the_projection_is_the_progress_now_and_it_is_overdue():
    result = _forecast([(0, 0.1), (7, 0.2), (14, 0.3)], 14, deadline_day=10, today_day=14)

    assert result.needed_pace is None
    assert result.projection == pytest.approx(0.3)
    assert _flags([(0, 0.1), (7, 0.2), (14, 0.3)], 14, deadline_day=10) == [
        OVERDUE,
        PROJECTED_TO_MISS,
    ]


def test_one_snapshot_on_the_same_day_is_not_enough_history():
    result = _forecast([(0, 0.2)], 0.5, deadline_day=30, today_day=0)

    assert (result.pace, result.projection, result.note) == (None, None, NOT_ENOUGH_HISTORY)
    assert PROJECTED_TO_MISS not in _flags([(0, 0.2)], 0.5, deadline_day=30, today_day=0)


def test_two_observations_two_days_apart_are_not_enough_history():
    assert _forecast([(0, 0.2), (2, 0.3)], 2, deadline_day=30).note == NOT_ENOUGH_HISTORY


def test_no_snapshot_at_all_is_not_enough_history():
    assert forecast([], None, has_target=True, deadline=None, today=date(0)).note == (
        NOT_ENOUGH_HISTORY
    )


def test_without_a_deadline_there_is_a_pace_but_no_projection():
    result = _forecast([(0, 0.1), (7, 0.2), (14, 0.3)], 14)

    assert result.pace == pytest.approx(0.1)
    assert (result.projection, result.note) == (None, NO_DEADLINE)


def test_the_pace_window_is_the_last_28_days_with_the_value_carried_in():
    # A jump 40 days ago is outside; the window opens at day 12 at 0.5 and stays flat.
    points = windowed([(day(0), 0.0), (day(5), 0.5), (day(40), 0.5)])

    assert points == [(day(12), 0.5), (day(40), 0.5)]
    assert _forecast([(0, 0.0), (5, 0.5)], 40, deadline_day=60, today_day=40).pace == 0.0


def test_closed_goals_get_no_flags():
    assert _flags([(0, 0.1)], 30, deadline_day=10, today_day=30, closed=True) == []


def test_a_goal_at_its_target_is_not_stalled():
    assert _flags([(0, 1.0)], 30, deadline_day=60, today_day=30) == []


@pytest.mark.parametrize(
    ("projection", "label"),
    [(1.2, "likely"), (1.0, "likely"), (0.99, "at risk"), (0.8, "at risk"), (0.79, "unlikely")],
)
def test_projection_labels_follow_the_documented_thresholds(projection, label):
    assert label_for(projection) == label
