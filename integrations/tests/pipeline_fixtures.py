"""Fixtures, helpers and in-process executors shared by the pipeline tests.

The fixtures reach the test modules through integrations/tests/conftest.py; the executors
are named by dotted path (PILOT_EXECUTOR), so subprocesses can import them too."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F

from integrations.asana.fake.api import FakeAsana
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline.claims import claim
from integrations.pipeline.runs import run_claimed
from integrations.pipeline.tags import WorkspaceTags

CALLS: list[str] = []
_calls_lock = threading.Lock()
# The fake a test is using, for executors that change Asana while they run.
FAKE: list[FakeAsana] = []


def succeed(task: dict[str, Any]) -> dict[str, Any]:
    with _calls_lock:
        CALLS.append(task["gid"])
    return {"summary": f"did {task['title']}"}


def succeed_with_link(task: dict[str, Any]) -> dict[str, Any]:
    with _calls_lock:
        CALLS.append(task["gid"])
    return {
        "summary": "Opened a pull request",
        "url": "https://github.com/acme/app/pull/42",
        "url_title": "PR #42",
    }


# The converted tasks `record_task` was given, in order.
SEEN: list[dict[str, Any]] = []


def record_task(task: dict[str, Any]) -> dict[str, Any]:
    with _calls_lock:
        SEEN.append(task)
    return {"summary": "recorded"}


def fail(task: dict[str, Any]) -> dict[str, Any]:
    with _calls_lock:
        CALLS.append(task["gid"])
    raise RuntimeError("the build is red")


def delete_the_task(task: dict[str, Any]) -> dict[str, Any]:
    FAKE[0].delete_task(task["gid"])
    return {"summary": "done, but the task is gone"}


@pytest.fixture
def calls() -> list[str]:
    CALLS.clear()
    return CALLS


@pytest.fixture
def fast_client(settings) -> None:
    # Every test's fake token is the same string, and the client's per-token budget is
    # process-wide: give the tests their own, generous one.
    settings.ASANA_REQUESTS_PER_MINUTE = 1_000_000
    # A retried reporting step waits this long (times the attempt): the retry, not the
    # wait, is what the tests look at.
    settings.PILOT_REPORT_RETRY_SECONDS = 0.05


@pytest.fixture
def seen(settings) -> list[dict[str, Any]]:
    """The executor is `record_task`: the converted tasks it was given."""
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:record_task"
    settings.PILOT_EXECUTOR_COMMAND = ""
    SEEN.clear()
    return SEEN


@pytest.fixture
def executor(settings, calls) -> list[str]:
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:succeed"
    settings.PILOT_EXECUTOR_COMMAND = ""
    return calls


@pytest.fixture
def pilot(fake_asana: FakeAsana, fast_client) -> FakeAsana:
    """The fake with a `pilot` tag in its workspace."""
    fake_asana.pilot_tag_gid = fake_asana.add_tag(fake_asana.workspace_gid, "pilot")
    FAKE[:] = [fake_asana]
    return fake_asana


@pytest.fixture
def connection(db, pilot: FakeAsana) -> AsanaConnection:
    return AsanaConnection.objects.create(
        workspace_gid=pilot.workspace_gid,
        workspace_name="Pilot Workspace",
        access_token=pilot.token,
    )


def tagged(fake: FakeAsana, name: str, **kwargs: Any) -> str:
    """A task carrying the pilot tag (plus any `tags` given)."""
    tags = ["pilot", *kwargs.pop("tags", [])]
    return fake.add_task(fake.workspace_gid, name, tags=tags, **kwargs)


def tag_gid(connection: AsanaConnection, name: str) -> str:
    """The GID pilotsite uses for a tag of this name (as cached by the last poll)."""
    connection.refresh_from_db()
    tags = WorkspaceTags.from_cache(connection)
    assert tags is not None, "poll first: the tags are not cached yet"
    return tags[name]


def comment_texts(fake: FakeAsana, gid: str) -> list[str]:
    return [c["text"] for c in fake.comments(gid)]


def process(connection: AsanaConnection, gid: str) -> ProcessedTask:
    """Claim a task and run it here, as a poller would; the row as it ended."""
    processed = claim(connection, gid, source="poll")
    assert processed is not None
    done = run_claimed(processed.pk, processed.claimed_by)
    assert done is not None
    return done


def interval_passes(connection: AsanaConnection) -> None:
    """Time passes: the connection's last poll moves back by its interval, so it is due."""
    AsanaConnection.objects.filter(pk=connection.pk).update(
        last_poll_at=F("last_poll_at") - timedelta(seconds=connection.poll_interval)
    )
    connection.refresh_from_db()
