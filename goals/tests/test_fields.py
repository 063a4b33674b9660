"""Asana goal fields turned into ours: the issue's status table, metric progress."""

import pytest

from goals.fields import map_status, progress
from goals.models import GoalStatus

ISSUE_TABLE = {
    GoalStatus.COMPLETED: ["achieved", "completed", "done"],
    GoalStatus.AT_RISK: ["at_risk", "behind", "partial"],
    GoalStatus.OFF_TRACK: ["off_track", "missed", "dropped"],
    GoalStatus.ON_TRACK: ["on_track", "paused", "", None],
}


@pytest.mark.parametrize(
    ("asana", "ours"), [(value, ours) for ours, values in ISSUE_TABLE.items() for value in values]
)
def test_every_value_in_the_issues_status_table_is_mapped(asana, ours):
    assert map_status(asana) == ours


def test_status_case_and_spacing_do_not_matter():
    assert map_status(" Achieved ") == GoalStatus.COMPLETED


@pytest.mark.parametrize(
    ("initial", "current", "target", "expected"),
    [
        (0, 40, 80, 0.5),
        (10, 40, 70, 0.5),
        (100, 80, 50, 0.4),  # a goal to bring a number down
        (0, 120, 100, 1.0),  # past the target: full, not more
        (0, None, 100, None),
    ],
)
def test_progress_runs_from_initial_to_target(initial, current, target, expected):
    assert progress(initial, current, target) == expected
