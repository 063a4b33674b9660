"""sync_goals against the fake Asana over real HTTP."""

from collections.abc import Callable

import pytest

from goals.models import EmployeeGoalState, Goal, GoalStatus, GoalSync, KeyResult
from goals.sync import sync_goals


def _goal_list_reads(fake_asana) -> list:
    return [r for r in fake_asana.requests if r[0] == "GET" and r[1] == "/goals"]


def test_goals_are_assigned_to_the_employee_who_owns_them(
    fake_asana, connection, hire, asana_client
):
    ada, ada_gid = hire("Ada")
    bob, bob_gid = hire("Bob")
    fake_asana.add_goal(fake_asana.workspace_gid, "Ship v2", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "Hire two", owner_gid=bob_gid)

    result = sync_goals(connection, client=asana_client)

    assert result.ok
    assert list(Goal.objects.filter(employee=ada).values_list("name", flat=True)) == ["Ship v2"]
    assert list(Goal.objects.filter(employee=bob).values_list("name", flat=True)) == ["Hire two"]


def test_unowned_and_unmapped_goals_are_skipped_and_counted(
    fake_asana, connection, hire, asana_client
):
    _, ada_gid = hire("Ada")
    _, stranger_gid = hire("Stranger", mapped=False)
    fake_asana.add_goal(fake_asana.workspace_gid, "Mine", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "Nobody's")
    fake_asana.add_goal(fake_asana.workspace_gid, "Stranger's", owner_gid=stranger_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "Stranger's too", owner_gid=stranger_gid)

    result = sync_goals(connection, client=asana_client)

    assert Goal.objects.count() == 1
    assert (result.sync.skipped_unowned, result.sync.skipped_unmapped) == (1, 2)


def test_the_workspace_goal_list_is_read_once_per_sync(fake_asana, connection, hire, asana_client):
    owners = [hire(f"Person {i}")[1] for i in range(5)]
    for i in range(150):  # two pages
        fake_asana.add_goal(fake_asana.workspace_gid, f"Goal {i}", owner_gid=owners[i % 5])
    fake_asana.reset_requests()

    sync_goals(connection, client=asana_client)

    pages = _goal_list_reads(fake_asana)
    assert len(pages) == 2
    assert "offset" not in pages[0][2] and "offset" in pages[1][2]
    assert all(p[2]["workspace"] == fake_asana.workspace_gid for p in pages)


def test_requests_are_one_goal_list_plus_one_lookup_per_kept_goal(
    fake_asana, connection, hire, asana_client
):
    _, ada_gid = hire("Ada")
    for i in range(3):
        fake_asana.add_goal(fake_asana.workspace_gid, f"Goal {i}", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "Unowned")
    fake_asana.reset_requests()

    result = sync_goals(connection, client=asana_client)

    lookups = [r for r in fake_asana.requests if r[1] == "/goal_relationships"]
    assert len(lookups) == 3
    assert all(r[2]["resource_subtype"] == "subgoal" for r in lookups)
    assert result.sync.requests == len(fake_asana.requests) == 4


@pytest.fixture
def sync_one_goal(fake_asana, connection, hire, asana_client) -> Callable[..., Goal]:
    """Give Ada one goal in Asana with these fields, sync, and return it as stored."""

    def sync_one_goal(**fields) -> Goal:
        ada, ada_gid = hire("Ada")
        fake_asana.add_goal(fake_asana.workspace_gid, "G", owner_gid=ada_gid, **fields)
        assert sync_goals(connection, client=asana_client).ok
        return Goal.objects.get(employee=ada)

    return sync_one_goal


def test_goal_fields_are_stored(sync_one_goal):
    goal = sync_one_goal(
        status="yellow",
        html_notes="<body><strong>Brand</strong> awareness &amp; reach<br>Second line</body>",
        due_on="2026-12-31",
        start_on="2026-01-01",
        metric={
            "unit": "currency",
            "currency_code": "EUR",
            "initial_number_value": 10,
            "current_number_value": 40,
            "target_number_value": 70,
        },
    )

    assert goal.description == "Brand awareness & reach\nSecond line"
    assert (str(goal.due_on), str(goal.start_on)) == ("2026-12-31", "2026-01-01")
    assert goal.status == GoalStatus.AT_RISK.value == "yellow"
    assert (goal.metric_initial, goal.metric_current, goal.metric_target) == (10, 40, 70)
    assert (goal.metric_unit, goal.metric_currency) == ("currency", "EUR")
    assert goal.progress == pytest.approx(0.5)


def test_a_goal_without_metric_has_no_progress(sync_one_goal):
    goal = sync_one_goal()

    assert (goal.has_metric, goal.progress, goal.metric_unit) == (False, None, "")


def test_long_descriptions_are_cut_to_1000_characters(sync_one_goal):
    description = sync_one_goal(html_notes=f"<body>{'x' * 5000}</body>").description

    assert len(description) == 1000 and description.endswith("…")


def test_a_list_in_the_description_keeps_one_item_a_line(sync_one_goal):
    goal = sync_one_goal(html_notes="<body>Plan:<ul><li>one</li><li>two</li></ul>Done</body>")

    assert goal.description == "Plan:\n- one\n- two\nDone"


def test_a_table_in_the_description_keeps_its_cells_and_rows_apart(sync_one_goal):
    goal = sync_one_goal(
        html_notes="<body><h2>Targets</h2><table><tr><td>Region</td><td>Target</td></tr>"
        "<tr><td>EMEA</td><td>10</td></tr></table><hr/>Owner: sales</body>"
    )

    assert goal.description == "Targets\nRegion | Target\nEMEA | 10\n---\nOwner: sales"


# Every value GoalResponse.status can take in asana_oas.yaml, and null.
@pytest.mark.parametrize(
    ("asana_status", "ours", "closed"),
    [
        ("green", GoalStatus.ON_TRACK, False),
        ("yellow", GoalStatus.AT_RISK, False),
        ("red", GoalStatus.OFF_TRACK, False),
        ("achieved", GoalStatus.ACHIEVED, True),
        ("partial", GoalStatus.PARTIAL, True),
        ("missed", GoalStatus.MISSED, True),
        ("dropped", GoalStatus.DROPPED, True),
        (None, GoalStatus.NO_STATUS, False),
    ],
)
def test_every_status_asana_sends_is_stored_as_sent(sync_one_goal, asana_status, ours, closed):
    goal = sync_one_goal(status=asana_status)

    assert (goal.status, goal.is_closed) == (ours, closed)


def test_only_the_first_200_goals_are_kept_and_the_employee_is_marked_truncated(
    fake_asana, connection, hire, asana_client
):
    ada, ada_gid = hire("Ada")
    gids = [
        fake_asana.add_goal(fake_asana.workspace_gid, f"G{i}", owner_gid=ada_gid)
        for i in range(205)
    ]

    result = sync_goals(connection, client=asana_client)

    kept = list(
        Goal.objects.filter(employee=ada).order_by("position").values_list("asana_gid", flat=True)
    )
    assert kept == gids[:200]
    state = EmployeeGoalState.objects.get(employee=ada)
    assert (state.truncated, state.owned, state.kept) == (True, 205, 200)
    assert result.employees[0].truncated and result.sync.employees_truncated == 1
    # Goals beyond the cap cost no sub-goal lookups.
    assert len([r for r in fake_asana.requests if r[1] == "/goal_relationships"]) == 200


def test_sub_goals_become_key_results_with_their_status(fake_asana, connection, hire, asana_client):
    ada, ada_gid = hire("Ada")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada_gid)
    fake_asana.add_goal(fake_asana.workspace_gid, "KR one", status="red", parent_gid=parent)
    fake_asana.add_goal(fake_asana.workspace_gid, "KR two", status="achieved", parent_gid=parent)

    result = sync_goals(connection, client=asana_client)

    goal = Goal.objects.get(employee=ada, name="Parent")
    assert [(k.name, k.status) for k in goal.key_results.order_by("position")] == [
        ("KR one", GoalStatus.OFF_TRACK),
        ("KR two", GoalStatus.ACHIEVED),
    ]
    assert result.sync.key_results == 2
    # Unowned sub-goals are key results, not goals of anyone.
    assert result.sync.skipped_unowned == 2


def test_a_resync_updates_key_results_instead_of_duplicating_them(
    fake_asana, connection, hire, asana_client
):
    _ada, ada_gid = hire("Ada")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada_gid)
    kr = fake_asana.add_goal(fake_asana.workspace_gid, "KR", status="green", parent_gid=parent)
    sync_goals(connection, client=asana_client)
    before = KeyResult.objects.get()

    fake_asana.update_goal(kr, name="KR renamed", status="red")
    sync_goals(connection, client=asana_client)

    after = KeyResult.objects.get()
    assert after.pk == before.pk
    assert (after.name, after.status) == ("KR renamed", GoalStatus.OFF_TRACK)


def test_sub_goals_removed_in_asana_are_removed(fake_asana, connection, hire, asana_client):
    _ada, ada_gid = hire("Ada")
    parent = fake_asana.add_goal(fake_asana.workspace_gid, "Parent", owner_gid=ada_gid)
    kept = fake_asana.add_goal(fake_asana.workspace_gid, "Kept", parent_gid=parent)
    gone = fake_asana.add_goal(fake_asana.workspace_gid, "Gone", parent_gid=parent)
    sync_goals(connection, client=asana_client)

    fake_asana.delete_goal(gone)
    sync_goals(connection, client=asana_client)

    assert list(KeyResult.objects.values_list("asana_gid", flat=True)) == [kept]


def test_goals_no_longer_returned_are_removed(fake_asana, connection, hire, asana_client):
    _ada, ada_gid = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Stays", owner_gid=ada_gid)
    leaves = fake_asana.add_goal(fake_asana.workspace_gid, "Leaves", owner_gid=ada_gid)
    sync_goals(connection, client=asana_client)

    fake_asana.delete_goal(leaves)
    result = sync_goals(connection, client=asana_client)

    assert list(Goal.objects.values_list("name", flat=True)) == ["Stays"]
    assert result.sync.goals_removed == 1


def test_a_goal_given_to_someone_else_moves_with_it(fake_asana, connection, hire, asana_client):
    _ada, ada_gid = hire("Ada")
    _bob, bob_gid = hire("Bob")
    gid = fake_asana.add_goal(fake_asana.workspace_gid, "Handover", owner_gid=ada_gid)
    sync_goals(connection, client=asana_client)

    fake_asana.update_goal(gid, owner=bob_gid)
    sync_goals(connection, client=asana_client)

    assert list(Goal.objects.values_list("employee__name", flat=True)) == ["Bob"]


def test_goals_of_an_employee_no_longer_mapped_are_removed(
    fake_asana, connection, hire, asana_client
):
    ada, ada_gid = hire("Ada")
    fake_asana.add_goal(fake_asana.workspace_gid, "Mine", owner_gid=ada_gid)
    sync_goals(connection, client=asana_client)

    ada.mappings.all().delete()
    sync_goals(connection, client=asana_client)

    assert not Goal.objects.exists() and not EmployeeGoalState.objects.exists()


def test_syncing_one_employee_leaves_the_others_alone(fake_asana, connection, hire, asana_client):
    _ada, ada_gid = hire("Ada")
    bob, bob_gid = hire("Bob")
    fake_asana.add_goal(fake_asana.workspace_gid, "Ada's", owner_gid=ada_gid)
    bob_goal = fake_asana.add_goal(fake_asana.workspace_gid, "Bob's", owner_gid=bob_gid)
    sync_goals(connection, client=asana_client)
    fake_asana.delete_goal(bob_goal)
    fake_asana.reset_requests()

    result = sync_goals(connection, employee_email="ADA@example.com", client=asana_client)

    assert [e.email for e in result.employees] == ["ada@example.com"]
    assert Goal.objects.filter(employee=bob).exists()
    assert len([r for r in fake_asana.requests if r[1] == "/goal_relationships"]) == 1


def test_every_sync_is_recorded_with_its_progress_and_counts(
    fake_asana, connection, hire, asana_client
):
    _, ada_gid = hire("Ada")
    hire("Bob")
    fake_asana.add_goal(fake_asana.workspace_gid, "G", owner_gid=ada_gid)

    sync_goals(connection, client=asana_client, source="schedule")

    run = GoalSync.objects.get()
    assert run.state == GoalSync.State.SUCCEEDED and run.source == "schedule"
    assert (run.employees_done, run.employees_total, run.goals_kept) == (2, 2, 1)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.error == ""
