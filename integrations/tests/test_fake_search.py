"""The fake Asana's task search behaves as the spec describes searchTasksForWorkspace: premium
only, filters by tags and completion, sorted by creation on request, no pagination cursor,
eventually consistent; and its lists stay fast however long the history."""

from collections.abc import Iterator

import httpx
import pytest

from integrations.asana.fake.api import FakeAsana


@pytest.fixture
def asana(fake_asana: FakeAsana, settings) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=settings.ASANA_API_BASE_URL,
        headers={"Authorization": f"Bearer {fake_asana.token}"},
        trust_env=False,
    ) as client:
        yield client


def search(asana: httpx.Client, workspace: str, **params: str) -> httpx.Response:
    return asana.get(f"/workspaces/{workspace}/tasks/search", params=params)


def names(response: httpx.Response, fake: FakeAsana) -> list[str]:
    assert response.status_code == 200, response.text
    return [fake.task(t["gid"])["name"] for t in response.json()["data"]]


def test_search_finds_open_tasks_with_a_tag_and_without_the_others(fake_asana, asana):
    ws = fake_asana.workspace_gid
    pilot = fake_asana.add_tag(ws, "pilot")
    done = fake_asana.add_tag(ws, "pilot-done")
    fake_asana.add_task(ws, "wanted", tags=[pilot], created_at="2026-01-01T00:00:00.000Z")
    fake_asana.add_task(ws, "already done", tags=[pilot, done])
    fake_asana.add_task(ws, "completed", tags=[pilot], completed=True)
    fake_asana.add_task(ws, "untagged")
    fake_asana.add_task(ws, "older", tags=[pilot], created_at="2025-01-01T00:00:00.000Z")

    response = search(
        asana,
        ws,
        **{"tags.any": pilot, "tags.not": done, "completed": "false"},
        sort_by="created_at",
        sort_ascending="true",
        opt_fields="name,created_at",
    )

    assert names(response, fake_asana) == ["older", "wanted"]
    assert "next_page" not in response.json()


def test_search_on_a_free_workspace_is_402(fake_asana, asana):
    fake_asana.set_premium(fake_asana.workspace_gid, False)

    response = search(asana, fake_asana.workspace_gid, completed="false")

    assert response.status_code == 402
    assert "premium" in response.json()["errors"][0]["message"]


def test_search_pages_by_created_at_after_and_limit(fake_asana, asana):
    ws = fake_asana.workspace_gid
    pilot = fake_asana.add_tag(ws, "pilot")
    for day in range(1, 6):
        created = f"2026-01-0{day}T00:00:00.000Z"
        fake_asana.add_task(ws, f"day {day}", tags=[pilot], created_at=created)
    params = {"tags.any": pilot, "sort_by": "created_at", "sort_ascending": "true"}

    first = search(asana, ws, **params, limit="2", opt_fields="created_at")
    last_seen = first.json()["data"][-1]["created_at"]
    second = search(asana, ws, **params, limit="2", **{"created_at.after": last_seen})

    assert names(first, fake_asana) == ["day 1", "day 2"]
    assert names(second, fake_asana) == ["day 3", "day 4"]


def test_search_refuses_a_limit_over_100(fake_asana, asana):
    response = search(asana, fake_asana.workspace_gid, limit="101")

    assert response.status_code == 400 and "limit" in response.text


def test_search_refuses_a_filter_the_fake_does_not_implement(fake_asana, asana):
    response = search(asana, fake_asana.workspace_gid, **{"assignee.any": "me"})

    assert response.status_code == 400 and "assignee.any" in response.text


def test_search_sees_a_change_only_after_the_indexing_delay(fake_asana, asana):
    ws = fake_asana.workspace_gid
    pilot = fake_asana.add_tag(ws, "pilot")
    fake_asana.search_index_delay = 3600
    task = fake_asana.add_task(ws, "fresh", tags=[pilot])

    before = search(asana, ws, **{"tags.any": pilot})
    fake_asana.search_index_delay = 0  # as if the hour had passed
    after = search(asana, ws, **{"tags.any": pilot})
    fake_asana.search_index_delay = 3600
    asana.post(f"/tasks/{task}/removeTag", json={"data": {"tag": pilot}})
    still_listed = search(asana, ws, **{"tags.any": pilot})

    assert names(before, fake_asana) == []
    assert names(after, fake_asana) == ["fresh"]
    assert names(still_listed, fake_asana) == ["fresh"]  # the removal is not indexed yet


def test_the_tag_list_shows_tags_added_and_removed_after_creation(fake_asana, asana):
    ws = fake_asana.workspace_gid
    pilot = fake_asana.add_tag(ws, "pilot")
    kept = fake_asana.add_task(ws, "kept", tags=[pilot])
    removed = fake_asana.add_task(ws, "removed", tags=[pilot])
    added = fake_asana.add_task(ws, "added later")
    asana.post(f"/tasks/{added}/addTag", json={"data": {"tag": pilot}})
    asana.post(f"/tasks/{removed}/removeTag", json={"data": {"tag": pilot}})

    listed = asana.get(f"/tags/{pilot}/tasks", params={"opt_fields": "name"})

    assert [t["gid"] for t in listed.json()["data"]] == [kept, added]
