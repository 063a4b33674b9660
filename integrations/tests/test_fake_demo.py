"""The fake Asana's demo: `--seed demo` builds a workspace pilotsite can use as is, and the
control endpoint (and its CLI) act in it as a person would in Asana."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from goals.models import Goal
from goals.sync import sync_goals
from integrations.asana.fake.control import PEOPLE
from integrations.connect import connect_workspace
from integrations.models import AsanaMapping, Employee
from integrations.pipeline.poll import poll_connection
from integrations.tests.procs import clean_env

ROOT = Path(settings.BASE_DIR)


def test_the_demo_has_people_projects_tasks_and_goals_with_key_results(demo):
    fake, control = demo
    state = httpx.get(control + "state").json()

    emails = {p["email"] for p in state["people"]}
    assert {email for _, email in PEOPLE} <= emails
    assert len(fake._records("project")) == 3
    assert len([t for t in state["tasks"] if not t["completed"]]) >= 5
    assert not any("pilot" in t["tags"] for t in state["tasks"])  # tagging is the tour's step
    assert all(g["current"] is not None for g in state["goals"])
    assert len(fake._records("goal_relationship")) >= 3  # key results under goals


@pytest.mark.django_db
def test_a_demo_connection_polls_cleanly_before_any_task_is_tagged(demo):
    fake, _ = demo
    connection = connect_workspace(fake.token, fake.workspace_gid)

    result = poll_connection(connection)

    assert (result.ok, result.candidates) == (True, []), result.message


@pytest.mark.django_db
def test_a_task_tagged_through_the_control_endpoint_is_picked_up_by_the_next_poll(demo):
    fake, control = demo
    connection = connect_workspace(fake.token, fake.workspace_gid)
    assert poll_connection(connection).candidates == []

    tagged = httpx.post(control + "tag-task", json={"task": "login redirect"}).json()

    assert tagged["tags"] == ["pilot"]
    assert poll_connection(connection).candidates == [tagged["task"]]


def test_tagging_a_completed_task_through_the_control_endpoint_says_it_will_not_run(demo):
    fake, control = demo

    tagged = httpx.post(control + "tag-task", json={"task": "Set up the pilot"}).json()

    assert fake.tag_names(tagged["task"]) == ["pilot"]
    assert "is completed: pilotsite picks up only incomplete tasks" in tagged["note"]
    incomplete = httpx.post(control + "tag-task", json={"task": "login redirect"}).json()
    assert "note" not in incomplete


def test_a_comment_through_the_control_endpoint_is_a_comment_story(demo):
    fake, control = demo
    answer = httpx.post(control + "comment", json={"task": "dark mode", "text": "Any news?"})

    assert [c["text"] for c in fake.comments(answer.json()["task"])] == ["Any news?"]


@pytest.mark.django_db
def test_goal_progress_moved_in_the_demo_shows_after_the_next_goal_sync(demo):
    fake, control = demo
    connection = connect_workspace(fake.token, fake.workspace_gid)
    ada = Employee.objects.create(name="Ada Lovelace", email="ada@example.com")
    ada_gid = next(u["gid"] for u in fake._records("user") if u["email"] == "ada@example.com")
    AsanaMapping.objects.create(employee=ada, connection=connection, asana_user_gid=ada_gid)
    sync_goals(connection, source="command")
    assert Goal.objects.get(name="Grow subscription revenue").progress_percent == 40

    httpx.post(control + "goal-progress", json={"goal": "subscription revenue", "current": 60000})
    sync_goals(connection, source="command")

    assert Goal.objects.get(name="Grow subscription revenue").progress_percent == 50


def test_a_control_request_naming_no_task_lists_the_names_to_use(demo):
    _, control = demo
    answer = httpx.post(control + "tag-task", json={"task": "no such thing"})

    assert answer.status_code == 404
    assert "'Fix the login redirect loop'" in answer.json()["error"]


def test_an_unknown_control_says_which_exist(demo):
    _, control = demo
    answer = httpx.post(control + "delete-everything", json={})

    assert answer.status_code == 404
    assert "POST tag-task" in answer.json()["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "integrations.asana.fake.server", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_demo_server_prints_what_to_paste_and_its_commands_work(tmp_path):
    port = str(_free_port())
    server = subprocess.Popen(
        [sys.executable, "-m", "integrations.asana.fake.server", "--port", port, "--seed", "demo"],
        cwd=ROOT,
        env=clean_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        printed = ""
        assert server.stdout is not None
        for line in server.stdout:
            printed += line
            if "See it all" in line:
                break
        state = json.loads(_cli("--port", port, "state").stdout)
        assert f"token:     {state['token']}" in printed
        assert f"workspace: {state['workspace']}" in printed
        assert f"--port {port} tag-task " in printed

        tagged = _cli("--port", port, "tag-task", "Fix the login redirect loop")
        assert tagged.returncode == 0, tagged.stderr
        assert json.loads(tagged.stdout)["tags"] == ["pilot"]
        people = _cli("--port", port, "employees-csv").stdout.splitlines()
        assert people[0] == "email,name,asana_user_gid"
        assert any(line.startswith("ada@example.com,Ada Lovelace,") for line in people)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_cli_says_how_to_start_the_fake_when_none_answers():
    result = _cli("--port", str(_free_port()), "tag-task", "anything")

    assert result.returncode == 2
    assert "--seed demo" in result.stderr


def test_the_cli_stops_quietly_when_its_reader_closes_the_pipe_early(demo):
    """`state | head`: the reader goes away before the state is printed."""
    _, control = demo
    port = str(urlsplit(control).port)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "integrations.asana.fake.server", "--port", port, "state"],
            cwd=ROOT,
            env=clean_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)

    assert result.returncode == 0
    assert result.stderr == ""


def test_a_comment_by_a_person_through_the_control_endpoint_is_theirs_and_shows_in_the_state(demo):
    fake, control = demo
    ada = next(u["gid"] for u in fake._records("user") if u["email"] == "ada@example.com")

    answer = httpx.post(
        control + "comment", json={"task": "dark mode", "text": "Tuesday", "by": "ada@example.com"}
    ).json()

    (story,) = fake.comments(answer["task"])
    assert (story["created_by"]["gid"], story["text"]) == (ada, "Tuesday")
    task = next(
        t for t in httpx.get(control + "state").json()["tasks"] if t["gid"] == answer["task"]
    )
    assert task["comments"] == [{"by": "Ada Lovelace", "text": "Tuesday"}]
