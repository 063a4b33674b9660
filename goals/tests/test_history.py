"""Progress history: snapshots written by the sync only when something changed, the goal's
deadline from its Asana time period, one listing for a sub-goal of the same owner, retention."""

import datetime

from django.utils import timezone

from goals import history
from goals.block import goals_block
from goals.models import Goal, KeyResult, ProgressSnapshot
from goals.sync import sync_goals

Q4 = {
    "display_name": "Q4 FY26",
    "period": "Q4",
    "start_on": "2026-10-01",
    "end_on": "2026-12-31",
}


def _metric(current: float, target: float = 100) -> dict:
    return {
        "initial_number_value": 0,
        "current_number_value": current,
        "target_number_value": target,
    }


def test_the_first_sync_records_one_snapshot_per_goal_and_key_result(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    parent = fake_asana.add_goal(
        fake_asana.workspace_gid, "Grow", owner_gid=ada, metric=_metric(10)
    )
    fake_asana.add_goal(fake_asana.workspace_gid, "Blog", parent_gid=parent, metric=_metric(5))

    assert sync_goals(connection, client=asana_client).ok

    goal = Goal.objects.get(name="Grow")
    kr = KeyResult.objects.get(name="Blog")
    assert list(goal.snapshots.values_list("progress", "current", "target")) == [(0.1, 10, 100)]
    assert list(kr.snapshots.values_list("progress", "current", "target")) == [(0.05, 5, 100)]


def test_an_unchanged_goal_gets_no_second_snapshot(fake_asana, connection, hire, asana_client):
    _, ada = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Grow", owner_gid=ada, metric=_metric(10))
    assert sync_goals(connection, client=asana_client).ok

    assert sync_goals(connection, client=asana_client).ok

    assert ProgressSnapshot.objects.count() == 1


def test_a_progress_change_adds_a_snapshot_for_that_goal_only(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    moving = fake_asana.add_goal(
        fake_asana.workspace_gid, "Moving", owner_gid=ada, metric=_metric(10)
    )
    fake_asana.add_goal(fake_asana.workspace_gid, "Still", owner_gid=ada, metric=_metric(10))
    assert sync_goals(connection, client=asana_client).ok

    fake_asana.update_goal(moving, metric=_metric(30))
    assert sync_goals(connection, client=asana_client).ok

    assert list(Goal.objects.get(name="Moving").snapshots.values_list("current", flat=True)) == [
        10,
        30,
    ]
    assert Goal.objects.get(name="Still").snapshots.count() == 1


def test_status_target_and_deadline_changes_each_add_a_snapshot(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    gid = fake_asana.add_goal(fake_asana.workspace_gid, "Grow", owner_gid=ada, metric=_metric(10))
    assert sync_goals(connection, client=asana_client).ok

    fake_asana.update_goal(gid, status="yellow")
    assert sync_goals(connection, client=asana_client).ok
    fake_asana.update_goal(gid, metric=_metric(10, target=200))
    assert sync_goals(connection, client=asana_client).ok
    fake_asana.update_goal(gid, due_on="2026-12-01")
    assert sync_goals(connection, client=asana_client).ok

    rows = list(Goal.objects.get().snapshots.values_list("status", "target", "deadline"))
    assert rows == [
        ("", 100, None),
        ("yellow", 100, None),
        ("yellow", 200, None),
        ("yellow", 200, datetime.date(2026, 12, 1)),
    ]


def test_a_goal_without_due_date_has_its_time_periods_end_as_deadline(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Quarterly", owner_gid=ada, time_period=Q4)
    fake_asana.add_goal(
        fake_asana.workspace_gid, "Dated", owner_gid=ada, time_period=Q4, due_on="2026-11-15"
    )

    assert sync_goals(connection, client=asana_client).ok

    quarterly, dated = Goal.objects.get(name="Quarterly"), Goal.objects.get(name="Dated")
    assert (quarterly.deadline, quarterly.time_period_name) == (
        datetime.date(2026, 12, 31),
        "Q4 FY26",
    )
    assert dated.deadline == datetime.date(2026, 11, 15)
    assert quarterly.snapshots.get().deadline == datetime.date(2026, 12, 31)


def test_a_goal_without_time_period_or_due_date_has_no_deadline(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Someday", owner_gid=ada)

    assert sync_goals(connection, client=asana_client).ok

    goal = Goal.objects.get()
    assert (goal.deadline, goal.time_period_name) == (None, "")


def test_a_sub_goal_of_the_same_owner_is_listed_once_under_its_parent(
    fake_asana, connection, hire, asana_client
):
    ada_employee, ada = hire("Ada")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada)
    fake_asana.add_goal(fake_asana.workspace_gid, "Own child", owner_gid=ada, parent_gid=parent)
    fake_asana.add_goal(fake_asana.workspace_gid, "Someone's child", parent_gid=parent)

    result = sync_goals(connection, client=asana_client)

    assert result.ok and result.sync.goals_kept == 1
    assert list(Goal.objects.values_list("name", flat=True)) == ["Parent"]
    assert list(KeyResult.objects.values_list("name", flat=True)) == [
        "Own child",
        "Someone's child",
    ]
    assert goals_block(ada_employee).count("Own child") == 1


def test_retention_drops_old_snapshots_but_keeps_each_items_latest(
    fake_asana, connection, hire, asana_client
):
    _, ada = hire("Ada")
    gid = fake_asana.add_goal(fake_asana.workspace_gid, "Grow", owner_gid=ada, metric=_metric(1))
    assert sync_goals(connection, client=asana_client).ok
    fake_asana.update_goal(gid, metric=_metric(2))
    assert sync_goals(connection, client=asana_client).ok
    goal = Goal.objects.get()
    long_ago = timezone.now() - datetime.timedelta(days=400)
    goal.snapshots.update(taken_at=long_ago)
    _, latest = goal.snapshots.order_by("id")

    deleted = history.prune(timezone.now(), retention_days=365)

    assert deleted == 1
    assert list(goal.snapshots.values_list("id", flat=True)) == [latest.id]
