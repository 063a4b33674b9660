"""Asana goal fields turned into ours: the status as Asana sends it, metric progress."""

import pytest

from goals.fields import progress, status_value
from goals.models import GoalStatus


@pytest.mark.parametrize(
    ("asana", "stored", "label"),
    [
        ("green", "green", "On track"),
        ("yellow", "yellow", "At risk"),
        ("red", "red", "Off track"),
        ("achieved", "achieved", "Achieved"),
        ("partial", "partial", "Partial"),
        ("missed", "missed", "Missed"),
        ("dropped", "dropped", "Dropped"),
        (None, "", "No status"),
    ],
)
def test_every_status_asana_sends_is_kept_and_named_in_asanas_words(asana, stored, label):
    assert status_value(asana) == stored
    assert GoalStatus(stored).label == label


def test_a_status_asana_adds_later_is_kept_as_sent_not_read_as_another():
    assert status_value("paused") == "paused"
    assert "paused" not in GoalStatus.values


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
