"""Polling one connection against the fake Asana over HTTP (steps 1–5 of a poll)."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from integrations.models import AsanaConnection, AuditLog, ProcessedTask
from integrations.pipeline.convert import STATUS_TAGS
from integrations.pipeline.poll import LIST_FIELDS, poll_connection, poll_if_due, take_poll_slot
from integrations.pipeline.tags import created_names
from integrations.tests.pipeline_fixtures import tagged

State = ProcessedTask.State


def paths(fake, method="GET"):
    return [p for m, p, _ in fake.requests if m == method]


def workspace_tag_names(fake) -> list[str]:
    return [t["name"] for t in fake._records("tag", workspace=fake.workspace_gid)]


def test_pilot_tag_name_is_case_sensitive(db, fake_asana, fast_client):
    fake_asana.add_tag(fake_asana.workspace_gid, "Pilot")
    conn = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid, access_token=fake_asana.token
    )
    result = poll_connection(conn)
    assert not result.ok
    assert "pilot tag 'pilot' not found" in result.message
    conn.refresh_from_db()
    assert "pilot tag 'pilot' not found" in conn.last_error
    assert conn.last_checked_at is not None
    assert not any(p.startswith("/tags/") for p in paths(fake_asana))


def test_missing_pilot_tag_creates_nothing(db, fake_asana, fast_client):
    conn = AsanaConnection.objects.create(
        workspace_gid=fake_asana.workspace_gid, access_token=fake_asana.token
    )
    poll_connection(conn)
    assert paths(fake_asana, "POST") == []


def test_missing_status_tags_are_created_and_audited(connection, pilot):
    assert poll_connection(connection).ok
    wanted = created_names(connection)
    assert sorted(workspace_tag_names(pilot)) == sorted(["pilot", *wanted])
    created = AuditLog.objects.filter(action="asana.create_tag", outcome="ok")
    assert created.count() == len(wanted)
    connection.refresh_from_db()
    assert set(connection.tag_gids["tags"]) == {"pilot", *wanted}


def test_existing_status_tags_are_reused(connection, pilot):
    pilot.add_tag(pilot.workspace_gid, "pilot-done")
    poll_connection(connection)
    assert workspace_tag_names(pilot).count("pilot-done") == 1


def test_tag_gids_are_cached_between_polls(connection, pilot):
    connection.watch_method = AsanaConnection.WatchMethod.TAG_LIST
    connection.save()
    poll_connection(connection)
    pilot.reset_requests()
    result = poll_connection(connection)
    assert result.ok
    assert paths(pilot) == [f"/tags/{pilot.pilot_tag_gid}/tasks"]


def test_list_call_asks_for_the_fields_the_filter_needs(connection, pilot):
    poll_connection(connection)
    query = next(q for m, p, q in pilot.requests if p.endswith("/tasks"))
    assert query["opt_fields"].split(",") == list(LIST_FIELDS)
    assert query["limit"] == "100"


def test_nothing_new_costs_one_request_per_page_of_the_tag_list(connection, pilot):
    connection.watch_method = AsanaConnection.WatchMethod.TAG_LIST
    connection.save()
    for i in range(250):
        tagged(pilot, f"done {i}", tags=["pilot-done"], completed=True)
    poll_connection(connection)
    pilot.reset_requests()
    result = poll_connection(connection)
    assert result.ok and result.candidates == [] and result.tagged == 250
    assert result.requests == 3
    assert len(pilot.requests) == 3
    assert not any(p.startswith("/tasks/") for p in paths(pilot))


def test_filter_keeps_only_new_open_tasks_without_status_tags(connection, pilot):
    fresh = tagged(pilot, "fresh")
    tagged(pilot, "completed", completed=True)
    for status in STATUS_TAGS:
        tagged(pilot, f"has {status}", tags=[status])
    done_in_ledger = tagged(pilot, "in the ledger as done")
    failed_in_ledger = tagged(pilot, "failed before, tag removed since")
    skipped = tagged(pilot, "skipped")
    pilot.add_task(pilot.workspace_gid, "not tagged")
    for gid, state in (
        (done_in_ledger, State.DONE),
        (failed_in_ledger, State.FAILED),
        (skipped, State.SKIPPED),
    ):
        ProcessedTask.objects.create(connection=connection, task_gid=gid, state=state)
    result = poll_connection(connection)
    assert sorted(result.candidates) == sorted([fresh, failed_in_ledger])
    assert result.tagged == 5 + len(STATUS_TAGS)


def test_candidates_are_oldest_first(connection, pilot):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    newest = tagged(pilot, "newest", created_at=base + timedelta(days=3))
    oldest = tagged(pilot, "oldest", created_at=base)
    middle = tagged(pilot, "middle", created_at=base + timedelta(days=1))
    assert poll_connection(connection).candidates == [oldest, middle, newest]


def test_backlog_is_processed_by_default(connection, pilot):
    gids = [tagged(pilot, f"backlog {i}") for i in range(3)]
    result = poll_connection(connection)
    assert sorted(result.candidates) == sorted(gids)
    connection.refresh_from_db()
    assert connection.backlog_checked_at is not None


def test_backlog_is_recorded_as_skipped_when_asked(connection, pilot):
    connection.skip_backlog = True
    connection.save()
    old = [tagged(pilot, f"backlog {i}") for i in range(3)]
    first = poll_connection(connection)
    assert first.candidates == [] and first.skipped_backlog == 3
    rows = ProcessedTask.objects.filter(connection=connection)
    assert sorted(rows.values_list("task_gid", flat=True)) == sorted(old)
    assert set(rows.values_list("state", flat=True)) == {State.SKIPPED}
    new = tagged(pilot, "tagged after the first poll")
    assert poll_connection(connection).candidates == [new]


def test_poll_records_time_and_result_on_the_connection(connection, pilot):
    tagged(pilot, "one")
    poll_connection(connection)
    connection.refresh_from_db()
    assert connection.last_poll_at is not None
    assert connection.last_poll_result == "ok: 1 tagged, 1 new"
    assert connection.last_error == ""


def test_rejected_token_is_recorded_on_health(connection, pilot):
    AsanaConnection.objects.filter(pk=connection.pk).update(tag_gids={})
    connection.access_token = "1/999:" + "ab" * 16
    connection.save()
    result = poll_connection(connection)
    assert not result.ok
    connection.refresh_from_db()
    assert "token was rejected" in connection.last_error
    assert connection.last_poll_result.startswith("poll failed")


# -- the poll slot shared by every poller -----------------------------------------------------


def test_poll_slot_is_taken_once_per_interval(connection):
    start = timezone.now()
    assert take_poll_slot(connection, start)
    assert not take_poll_slot(connection, start + timedelta(seconds=29))
    # Another process, whose copy of the row predates that poll, loses the race too.
    other = AsanaConnection.objects.get(pk=connection.pk)
    other.last_poll_at = None
    assert not take_poll_slot(other, start + timedelta(seconds=29))
    assert take_poll_slot(connection, start + timedelta(seconds=30))


def test_no_poll_slot_when_polling_is_off(connection):
    AsanaConnection.objects.filter(pk=connection.pk).update(polling_enabled=False)
    assert not take_poll_slot(connection)


def test_second_poll_within_the_interval_sends_nothing(connection, pilot):
    gid = tagged(pilot, "one")
    first = poll_if_due(connection)
    assert first is not None and first.candidates == [gid]
    pilot.reset_requests()
    assert poll_if_due(connection) is None
    assert pilot.requests == []


def test_poll_is_due_again_after_the_interval(connection, pilot):
    assert poll_if_due(connection) is not None
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_poll_at=timezone.now() - timedelta(seconds=connection.poll_interval)
    )
    connection.refresh_from_db()
    pilot.reset_requests()
    again = poll_if_due(connection)
    assert again is not None and again.ok
    assert paths(pilot) == [f"/workspaces/{pilot.workspace_gid}/tasks/search"]


def test_interval_runs_from_the_start_of_a_poll(connection, pilot):
    pilot.inject("slow", method="GET", path=r"^/tags/\d+/tasks$", delay=0.3)
    started = timezone.now()
    poll_if_due(connection)
    connection.refresh_from_db()
    assert started <= connection.last_poll_at < started + timedelta(seconds=0.3)


def test_a_slow_poll_never_moves_the_slot_back(connection, pilot):
    # Another process took the next slot while this poll was still running.
    later = timezone.now() + timedelta(seconds=10)
    AsanaConnection.objects.filter(pk=connection.pk).update(last_poll_at=later)
    poll_connection(connection)
    connection.refresh_from_db()
    assert connection.last_poll_at == later
