"""The goals tab and the goals admin: who sees which employees, and who may sync."""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from goals import sync as goals_sync
from goals import tab
from goals.fields import progress
from goals.jobs import sync_connection
from goals.models import STALE_AFTER, EmployeeGoalState, Goal, GoalStatus, GoalSync, KeyResult
from integrations.models import AsanaConnection, AuditLog, Employee
from pilotsite.liveness import Kind, beat

TAB = "/admin/?tab=goals"


@pytest.fixture
def connection(db) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid="1234", workspace_name="Acme", access_token="1/123:" + "a" * 32
    )


def _employee(name: str, manager=None) -> Employee:
    return Employee.objects.create(name=name, email=f"{name.lower()}@example.com", manager=manager)


def _goal(connection, employee, name, **fields) -> Goal:
    return Goal.objects.create(
        connection=connection,
        employee=employee,
        name=name,
        asana_gid=str(Goal.objects.count() + 100),
        **fields,
    )


@pytest.fixture
def team(connection, manager_user, django_user_model):
    """Ada reports to the manager; Bob reports to someone else."""
    other = django_user_model.objects.create_user("other-manager")
    ada = _employee("Ada", manager_user)
    bob = _employee("Bob", other)
    ada_goal = _goal(connection, ada, "Ada ships v2", status=GoalStatus.AT_RISK)
    bob_goal = _goal(connection, bob, "Bob hires two")
    KeyResult.objects.create(goal=ada_goal, asana_gid="900", name="Ada's key result")
    KeyResult.objects.create(goal=bob_goal, asana_gid="901", name="Bob's key result")
    return {"ada": ada, "bob": bob, "ada_goal": ada_goal, "bob_goal": bob_goal}


def test_a_manager_sees_only_their_reports_goals(client, manager_user, team):
    client.force_login(manager_user)

    page = client.get(TAB).content.decode()

    assert "Ada ships v2" in page and "Ada&#x27;s key result" in page
    assert "Bob" not in page


def test_a_superuser_sees_everyone(admin_client, team):
    page = admin_client.get(TAB).content.decode()

    assert "Ada ships v2" in page and "Bob hires two" in page


def test_staff_without_goal_permission_see_no_goals(client, outsider_user, team):
    client.force_login(outsider_user)

    page = client.get(TAB).content.decode()

    assert "do not have permission to view goals" in page
    assert "Ada ships v2" not in page


def test_a_non_staff_employee_is_sent_to_the_login_page(client, employee_user, team):
    client.force_login(employee_user)

    response = client.get(TAB)

    assert response.status_code == 302 and "/login/" in response.url


def test_goals_show_badge_due_date_progress_description_and_key_results(admin_client, connection):
    ada = _employee("Ada")
    goal = _goal(
        connection,
        ada,
        "Grow traffic",
        status=GoalStatus.OFF_TRACK,
        due_on=datetime.date(2026, 12, 31),
        description="Brand awareness",
        has_metric=True,
        metric_current=40,
        metric_target=80,
        progress=0.5,
    )
    KeyResult.objects.create(goal=goal, asana_gid="7", name="Launch blog", status="achieved")

    page = admin_client.get(TAB).content.decode()

    assert '<span class="badge badge-red">Off track</span>' in page
    assert "Due 2026-12-31" in page and "Progress 50%" in page and "Brand awareness" in page
    assert (
        'Launch blog <span class="badge badge-achieved">Achieved</span> '
        '<span class="badge badge-closed">closed</span>'
    ) in page


def test_the_last_sync_time_and_truncated_flag_are_shown(admin_client, connection):
    ada = _employee("Ada")
    EmployeeGoalState.objects.create(
        employee=ada,
        connection=connection,
        last_synced_at=datetime.datetime(2026, 5, 1, 9, 30, tzinfo=datetime.UTC),
        owned=250,
        kept=200,
        truncated=True,
    )

    page = admin_client.get(TAB).content.decode()

    assert "Last synced 2026-05-01 09:30" in page
    assert "Truncated: showing the first 200 of 250 goals" in page


def test_goals_can_be_filtered_by_status(admin_client, connection, team):
    page = admin_client.get(TAB + "&status=yellow").content.decode()

    assert "Ada ships v2" in page and "Bob hires two" not in page


def test_goals_nobody_has_rated_show_no_status_and_can_be_filtered(admin_client, team):
    page = admin_client.get(TAB + "&status=none").content.decode()

    assert "Bob hires two" in page and "Ada ships v2" not in page
    assert '<span class="badge badge-none">No status</span>' in page


def test_the_status_filter_offers_asanas_statuses_open_and_closed(admin_client, team):
    page = admin_client.get(TAB).content.decode()

    open_group = page[
        page.index('<optgroup label="Open">') : page.index('<optgroup label="Closed">')
    ]
    closed_group = page[page.index('<optgroup label="Closed">') :]
    for label in ("On track", "At risk", "Off track", "No status"):
        assert f">{label}</option>" in open_group
    for label in ("Achieved", "Partial", "Missed", "Dropped"):
        assert f">{label}</option>" in closed_group


def test_employees_can_be_searched(admin_client, team):
    page = admin_client.get(TAB + "&q=bob").content.decode()

    assert "Bob hires two" in page and "Ada ships v2" not in page


def test_a_running_sync_shows_its_progress(admin_client, connection):
    GoalSync.objects.create(
        connection=connection, source="admin", employees_total=40, employees_done=12
    )

    page = admin_client.get(TAB).content.decode()

    assert "12 of 40 employees done" in page


@pytest.mark.parametrize("where", [TAB, "/admin/?tab=integrations"])
def test_a_failed_syncs_error_is_shown_on_the_goals_tab_and_the_asana_card(
    admin_client, connection, where
):
    GoalSync.objects.create(
        connection=connection,
        source="schedule",
        state=GoalSync.State.FAILED,
        error="Goals are not available on this workspace's Asana plan (402)",
    )

    page = admin_client.get(where).content.decode()

    assert "Goals are not available on this workspace&#x27;s Asana plan (402)" in page


def _stalled(sync: GoalSync) -> GoalSync:
    GoalSync.objects.filter(pk=sync.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - datetime.timedelta(minutes=1)
    )
    return sync


def test_the_sync_section_refreshes_itself_while_a_sync_runs(admin_client, connection):
    idle = admin_client.get(TAB).content.decode()
    GoalSync.objects.create(connection=connection, source="admin")

    running = admin_client.get(TAB).content.decode()

    assert 'id="goal-syncs" data-live-url="/admin/tabs/goals/syncs/" data-live-seconds="0"' in idle
    assert 'data-live-seconds="3"' in running
    assert "pilotsite/live.js" in running
    assert 'disabled title="A sync is running"' in running


def test_a_sync_whose_worker_died_is_not_shown_as_running(admin_client, connection):
    _stalled(GoalSync.objects.create(connection=connection, source="admin"))

    goals_tab = admin_client.get(TAB).content.decode()
    card = admin_client.get("/admin/?tab=integrations").content.decode()

    assert "Sync running" not in goals_tab and 'http-equiv="refresh"' not in goals_tab
    assert "stalled" in card


@pytest.mark.parametrize(
    ("unit", "currency", "initial", "current", "target", "shown"),
    [
        ("currency", "EUR", 0, 4000, 11000, "Progress 36% (4,000 EUR of 11,000 EUR)"),
        ("none", "", None, 2.5, 10, "Progress 25% (2.5 of 10)"),
        # A percentage metric from 0% to 100% is its own progress. Asana keeps it as a
        # fraction of 1.
        ("percentage", "", 0, 0.4, 1, "Progress 40%</p>"),
        ("percentage", "", 0, 0.2, 0.5, "Progress 40% (20% of 50%)"),
        (
            "currency",
            "EUR",
            1000,
            4000,
            11000,
            "Progress 30% (4,000 EUR now, from 1,000 EUR to 11,000 EUR)",
        ),
        # Fewer open bugs: the target is below the start.
        ("none", "", 20, 8, 5, "Progress 80% (8 now, from 20 down to 5)"),
        ("percentage", "", 0.5, 0.3, 0.1, "Progress 50% (30% now, from 50% down to 10%)"),
    ],
)
def test_progress_reads_right_for_each_kind_of_metric(
    admin_client, connection, unit, currency, initial, current, target, shown
):
    _goal(
        connection,
        _employee("Ada"),
        "Metric goal",
        has_metric=True,
        metric_unit=unit,
        metric_currency=currency,
        metric_initial=initial,
        metric_current=current,
        metric_target=target,
        progress=progress(initial, current, target),
    )

    page = admin_client.get(TAB).content.decode()

    assert shown in page


def _sync_url(connection) -> str:
    return reverse("admin:goals:sync", args=[connection.pk])


@pytest.fixture
def sync_now(admin_client, connection, django_capture_on_commit_callbacks):
    """Press "Sync now" as the admin; the request's transaction commits, so the job it
    queues on commit is sent (the test's own transaction would hold it back)."""

    def press(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return admin_client.post(_sync_url(connection), **kwargs)

    return press


def test_sync_now_queues_a_sync_and_is_audited(sync_now):
    response = sync_now()

    assert response.status_code == 302
    assert OrmQ.objects.count() == 1
    assert AuditLog.objects.filter(action="goals.sync_requested", actor_label="admin").exists()


def test_sync_now_does_not_queue_a_second_sync_while_one_runs(sync_now, connection):
    GoalSync.objects.create(connection=connection, source="admin")

    sync_now()

    assert OrmQ.objects.count() == 0


def test_a_sync_requested_inside_a_transaction_that_rolls_back_queues_nothing(connection):
    from django.db import transaction

    from goals.jobs import request_sync

    with pytest.raises(RuntimeError), transaction.atomic():
        request_sync(connection)
        raise RuntimeError("the request failed after asking for the sync")

    assert OrmQ.objects.count() == 0
    assert not GoalSync.objects.filter(state=GoalSync.State.QUEUED).exists()


def test_a_requested_sync_job_is_sent_only_when_its_queued_row_is_committed(
    connection, django_capture_on_commit_callbacks
):
    from goals.jobs import request_sync

    with django_capture_on_commit_callbacks() as callbacks:
        request_sync(connection)
        # Not sent yet: a worker taking it now would not find the queued row.
        assert OrmQ.objects.count() == 0
    assert len(callbacks) == 1
    callbacks[0]()
    assert OrmQ.objects.count() == 1


def test_sync_now_pressed_twice_queues_one_sync(sync_now):
    sync_now()
    second = sync_now(follow=True)

    assert OrmQ.objects.count() == 1
    assert GoalSync.objects.filter(state=GoalSync.State.QUEUED).count() == 1
    assert "is already queued" in second.content.decode()


def test_sync_now_says_so_when_no_q_cluster_is_running(admin_client, connection):
    page = admin_client.post(_sync_url(connection), follow=True).content.decode()

    assert "queued; progress shows below" not in page
    assert "no q cluster is running to do it" in page
    assert "Sync queued" in page


def test_sync_now_says_queued_when_a_q_cluster_is_alive(admin_client, connection):
    beat(Kind.QCLUSTER, started_at=timezone.now())

    page = admin_client.post(_sync_url(connection), follow=True).content.decode()

    assert "queued; progress shows below" in page


def test_the_queued_sync_is_taken_off_when_its_job_runs(sync_now, connection, fake_asana):
    sync_now()

    # The job runs (the fake Asana refuses this connection's token: the sync fails, recorded).
    sync_connection(connection.pk, "admin")

    assert not GoalSync.objects.filter(state=GoalSync.State.QUEUED).exists()
    sync_now()
    assert OrmQ.objects.count() == 2


def test_the_sync_section_keeps_refreshing_while_the_job_starts(
    admin_client, admin_user, connection, fake_asana, monkeypatch
):
    admin_client.post(_sync_url(connection))
    seen = []
    claim = goals_sync._claim

    def watched_claim(*args, **kwargs):
        # The moment between the job taking the queued sync and the sync running.
        seen.append(tab.syncs_context(admin_user)["goals_busy"])
        return claim(*args, **kwargs)

    monkeypatch.setattr(goals_sync, "_claim", watched_claim)
    sync_connection(connection.pk, "admin")

    assert seen == [True]
    assert not GoalSync.objects.filter(state=GoalSync.State.QUEUED).exists()


def test_the_sync_section_alone_is_served_for_refreshing(admin_client, connection):
    GoalSync.objects.create(connection=connection, source="admin")

    fragment = admin_client.get(reverse("admin:goals:syncs")).content.decode()

    assert 'id="goal-syncs"' in fragment and 'data-live-seconds="3"' in fragment
    assert "<html" not in fragment


def test_the_sync_section_is_refused_to_staff_without_goal_permission(client, outsider_user):
    client.force_login(outsider_user)

    assert client.get(reverse("admin:goals:syncs")).status_code == 403


def test_the_sync_section_sends_who_is_not_staff_to_the_sign_in(client, employee_user):
    client.force_login(employee_user)

    url = reverse("admin:goals:syncs")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize("persona", ["manager_user", "outsider_user"])
def test_sync_now_is_forbidden_without_change_permission(request, client, connection, persona):
    client.force_login(request.getfixturevalue(persona))

    assert client.post(_sync_url(connection)).status_code == 403
    assert OrmQ.objects.count() == 0


def test_a_manager_cannot_edit_a_goal_in_the_admin(client, manager_user, team):
    client.force_login(manager_user)
    url = reverse("admin:goals_goal_change", args=[team["ada_goal"].pk])

    assert client.get(url).status_code == 200  # view-only
    assert client.post(url, {"name": "Changed"}).status_code == 403
    assert Goal.objects.get(pk=team["ada_goal"].pk).name == "Ada ships v2"


@pytest.mark.parametrize("model", ["goal", "keyresult", "employeegoalstate", "goalsync"])
def test_a_manager_can_neither_change_add_nor_delete_synced_rows(
    client, manager_user, team, connection, model
):
    ada = team["ada"]
    rows = {
        "goal": team["ada_goal"],
        "keyresult": team["ada_goal"].key_results.get(),
        "employeegoalstate": EmployeeGoalState.objects.create(
            employee=ada, connection=connection, last_synced_at=timezone.now()
        ),
        "goalsync": GoalSync.objects.create(
            connection=connection, source="command", state="succeeded"
        ),
    }
    pk = rows[model].pk
    client.force_login(manager_user)

    assert client.post(reverse(f"admin:goals_{model}_change", args=[pk]), {}).status_code == 403
    assert client.post(reverse(f"admin:goals_{model}_add"), {}).status_code == 403
    delete = reverse(f"admin:goals_{model}_delete", args=[pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert type(rows[model]).objects.filter(pk=pk).exists()


def test_a_manager_does_not_see_syncs_of_another_managers_report(
    client, manager_user, team, connection
):
    for email in ("bob@example.com", "ada@example.com", ""):
        GoalSync.objects.create(
            connection=connection,
            source="command",
            state="failed",
            employee_email=email,
            error=f"sync of {email or 'everyone'} failed",
        )
    client.force_login(manager_user)

    goals_tab = client.get(TAB).content.decode()
    admin_list = client.get(reverse("admin:goals_goalsync_changelist")).content.decode()

    for page in (goals_tab, admin_list):
        assert "sync of ada@example.com failed" in page and "sync of everyone failed" in page
        assert "bob@example.com" not in page


@pytest.fixture
def synced(connection, manager_user, team):
    """A whole-workspace sync of 57 employees and 321 goals; Ada (the manager's) has 7 goals
    kept, one more report of the manager has not been synced yet."""
    GoalSync.objects.create(
        connection=connection,
        source="schedule",
        state="succeeded",
        employees_total=57,
        employees_done=57,
        goals_kept=321,
        key_results=654,
        requests=987,
    )
    EmployeeGoalState.objects.create(
        employee=team["ada"], connection=connection, last_synced_at=timezone.now(), kept=7
    )
    EmployeeGoalState.objects.create(
        employee=team["bob"], connection=connection, last_synced_at=timezone.now(), kept=300
    )
    _employee("Cy", manager_user)


def test_a_manager_sees_how_their_reports_were_synced_not_the_workspaces_counts(
    client, manager_user, synced
):
    client.force_login(manager_user)

    section = client.get(reverse("admin:goals:syncs")).content.decode()

    assert "Your reports: 1 of 2 synced" in section and "7 goals kept" in section
    assert not any(figure in section for figure in ("57", "321", "654", "987", "307"))


def test_who_sees_everyone_sees_each_syncs_workspace_counts(admin_client, synced):
    section = admin_client.get(reverse("admin:goals:syncs")).content.decode()

    assert all(figure in section for figure in ("57 of 57", "321", "654", "987"))
    assert "Your reports" not in section


def test_the_goal_sync_admin_shows_workspace_counts_only_to_who_sees_everyone(
    client, admin_client, manager_user, synced
):
    url = reverse("admin:goals_goalsync_changelist")
    sync = GoalSync.objects.get()
    client.force_login(manager_user)
    for page in (
        client.get(url),
        client.get(reverse("admin:goals_goalsync_change", args=[sync.pk])),
    ):
        assert page.status_code == 200 and "schedule" in page.content.decode()
        assert not any(figure in page.content.decode() for figure in ("321", "654", "987"))
    assert all(figure in admin_client.get(url).content.decode() for figure in ("321", "654"))


def test_a_manager_opening_another_managers_reports_sync_is_told_they_see_only_their_reports(
    client, manager_user, team, connection
):
    bobs = GoalSync.objects.create(
        connection=connection, source="command", employee_email="bob@example.com"
    )
    client.force_login(manager_user)

    response = client.get(reverse("admin:goals_goalsync_change", args=[bobs.pk]), follow=True)

    assert "You can only see your own reports" in response.content.decode()


def test_a_manager_cannot_open_another_managers_report_in_the_admin(client, manager_user, team):
    client.force_login(manager_user)

    response = client.get(reverse("admin:goals_goal_change", args=[team["bob_goal"].pk]))

    assert response.status_code == 302  # "doesn't exist": outside the manager's scope


@pytest.mark.parametrize(
    ("model", "own", "other"),
    [
        ("goal", "Ada ships v2", "Bob hires two"),
        ("keyresult", "Ada's key result", "Bob's key result"),
    ],
)
def test_the_admin_lists_only_a_managers_reports(client, manager_user, team, model, own, other):
    client.force_login(manager_user)

    page = client.get(reverse(f"admin:goals_{model}_changelist")).content.decode()

    assert own.replace("'", "&#x27;") in page and other.replace("'", "&#x27;") not in page


def _render_tab(user) -> str:
    request = RequestFactory().get(TAB)
    request.user = user
    return render_to_string("goals/tab.html", tab.context(request), request=request)


def _populate(connection, employees: int, goals: int, manager=None) -> None:
    for e in range(employees):
        employee = _employee(f"Person{connection.pk}x{Employee.objects.count()}", manager)
        EmployeeGoalState.objects.create(
            employee=employee,
            connection=connection,
            last_synced_at=datetime.datetime.now(datetime.UTC),
        )
        for g in range(goals):
            goal = _goal(connection, employee, f"Goal {e}.{g}")
            KeyResult.objects.create(goal=goal, asana_gid=f"kr{goal.pk}", name="KR")
    GoalSync.objects.create(connection=connection, source="schedule", state="succeeded")


# A manager's permissions are loaded from the database once (one query more) and their
# reporting lines are looked up (one query per level; one here), and how their reports were
# synced is counted (one).
@pytest.mark.parametrize(("persona", "queries"), [("admin_user", 7), ("manager_user", 10)])
def test_the_goals_tab_query_count_is_pinned(
    request, connection, django_assert_num_queries, persona, queries
):
    user = request.getfixturevalue(persona)
    manager = None if user.is_superuser else user
    for employees, goals in [(3, 2), (10, 5)]:
        _populate(connection, employees, goals, manager=manager)
        fresh = type(user).objects.get(pk=user.pk)  # no permissions cached from the last render
        with django_assert_num_queries(queries):
            _render_tab(fresh)


def test_the_tab_for_an_anonymous_user_shows_nothing(db):
    request = RequestFactory().get(TAB)
    request.user = AnonymousUser()

    assert tab.context(request) == {}


def test_an_unmapped_employee_is_shown_as_not_mapped_rather_than_not_synced(admin_client):
    Employee.objects.create(name="Una Unmapped", email="una@example.com")
    page = admin_client.get(TAB).content.decode()
    assert "Una Unmapped" in page
    assert "Not mapped to an Asana user" in page


def test_the_goal_admin_lists_and_filters_statuses_in_asanas_words(admin_client, team):
    url = reverse("admin:goals_goal_changelist")

    page = admin_client.get(url).content.decode()
    unrated = admin_client.get(url + "?status__exact=").content.decode()

    assert "At risk" in page and "No status" in page
    assert "Bob hires two" in unrated and "Ada ships v2" not in unrated
