"""The whole task reaches the executor: each field family of the converted task, read over
HTTP from the fake Asana, and what those reads cost."""

import json
import sys

import pytest

from integrations.asana.client import AsanaClient
from integrations.models import AsanaMapping, Employee, ProcessedTask
from integrations.pipeline import stories
from integrations.pipeline.report import STARTED_TEXT
from integrations.pipeline.stories import CUT_MARK, read_stories
from integrations.tests.pipeline_fixtures import process, tagged

State = ProcessedTask.State


def person(fake, name: str, email: str) -> str:
    return fake.add_user(name, email, [fake.workspace_gid])


def reads(fake, path_end: str) -> int:
    return sum(
        1 for method, path, _ in fake.requests if method == "GET" and path.endswith(path_end)
    )


# -- the comment thread ----------------------------------------------------------------------


def test_comments_arrive_oldest_first_as_plain_text_with_their_authors(connection, pilot, seen):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    gid = tagged(pilot, "Fix the login page")
    pilot.person_comments(gid, ann, "It breaks on Safari")
    pilot.person_comments(
        gid, ann, html_text="<body>Steps:<ul><li>open</li><li>log in</li></ul></body>"
    )

    assert process(connection, gid).state == State.DONE

    comments = seen[0]["comments"]
    assert [(c["author"], c["text"], c["by_pilotsite"]) for c in comments] == [
        ("Ann Lee", "It breaks on Safari", False),
        ("Ann Lee", "Steps:\n- open\n- log in", False),
    ]
    assert comments[0]["created_at"] <= comments[1]["created_at"]
    assert seen[0]["comments_omitted"] == 0


def test_pilotsites_own_comments_are_marked_and_this_runs_start_is_not_in_the_thread(
    connection, pilot, seen, settings
):
    gid = tagged(pilot, "Try again")
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:fail"
    assert process(connection, gid).state == State.FAILED
    pilot.person_changes_task(gid, pilot.user_gid, remove=["pilot-failed"])
    settings.PILOT_EXECUTOR = "integrations.tests.pipeline_fixtures:record_task"

    assert process(connection, gid).state == State.DONE

    comments = seen[0]["comments"]
    assert [c["text"] for c in comments] == [
        STARTED_TEXT,
        "Failed: RuntimeError: the build is red",
    ]
    assert all(c["by_pilotsite"] for c in comments)


def test_the_thread_keeps_the_newest_comments_across_pages(connection, pilot, seen):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    gid = tagged(pilot, "A long discussion")
    for number in range(1, 131):
        pilot.person_comments(gid, ann, f"comment {number}")

    assert process(connection, gid).state == State.DONE

    texts = [c["text"] for c in seen[0]["comments"]]
    assert len(texts) == stories.MAX_COMMENTS
    assert texts[-1] == "comment 130"
    assert texts[0] == f"comment {131 - stories.MAX_COMMENTS}"
    assert seen[0]["comments_omitted"] == 130 - stories.MAX_COMMENTS
    assert reads(pilot, f"/tasks/{gid}/stories") == 2  # 131 stories: two pages of 100


def test_a_long_comment_is_cut_and_the_thread_stays_within_its_total(pilot, monkeypatch):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    gid = pilot.add_task(pilot.workspace_gid, "Logs pasted")
    monkeypatch.setattr(stories, "COMMENT_TEXT_LIMIT", 100)
    monkeypatch.setattr(stories, "THREAD_TEXT_LIMIT", 250)
    for letter in "abcd":
        pilot.person_comments(gid, ann, letter * 500)

    with AsanaClient(pilot.token) as client:
        thread = read_stories(client, gid, own_user_gid=pilot.user_gid)

    assert [c.text for c in thread.comments] == [
        "c" * (100 - len(CUT_MARK)) + CUT_MARK,
        "d" * (100 - len(CUT_MARK)) + CUT_MARK,
    ]
    assert thread.omitted == 2


# -- who tagged it ---------------------------------------------------------------------------


def test_the_person_who_added_the_pilot_tag_is_named_with_their_mapped_email(
    connection, pilot, seen
):
    ann = person(pilot, "Ann Lee", "ann.asana@example.com")
    bob = person(pilot, "Bob Roy", "bob@example.com")
    employee = Employee.objects.create(name="Ann Lee", email="ann@example.com")
    AsanaMapping.objects.create(employee=employee, connection=connection, asana_user_gid=ann)
    gid = pilot.add_task(pilot.workspace_gid, "Tagged twice")
    pilot.person_changes_task(gid, bob, add=["pilot"])
    pilot.person_changes_task(gid, bob, remove=["pilot"])
    pilot.person_changes_task(gid, ann, add=["pilot", "docs"])

    assert process(connection, gid).state == State.DONE

    assert seen[0]["tagged_by"] == {"gid": ann, "name": "Ann Lee", "email": "ann@example.com"}


def test_an_unmapped_tagger_has_no_email_and_an_unknown_one_is_null(connection, pilot, seen):
    bob = person(pilot, "Bob Roy", "bob@example.com")
    by_bob = pilot.add_task(pilot.workspace_gid, "Tagged by Bob")
    pilot.person_changes_task(by_bob, bob, add=["pilot"])
    no_story = tagged(pilot, "Tagged without a story")

    process(connection, by_bob)
    process(connection, no_story)

    assert seen[0]["tagged_by"] == {"gid": bob, "name": "Bob Roy", "email": None}
    assert seen[1]["tagged_by"] is None


# -- a command executor gets it all on standard input ----------------------------------------


def test_a_command_executor_receives_the_thread_on_stdin(connection, pilot, settings, tmp_path):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    gid = pilot.add_task(pilot.workspace_gid, "Read the thread")
    pilot.person_changes_task(gid, ann, add=["pilot"])
    pilot.person_comments(gid, ann, "Use the staging database")
    seen_file = tmp_path / "stdin.json"
    script = tmp_path / "executor.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(seen_file)!r}, 'w').write(sys.stdin.read())\n"
        "print(json.dumps({'summary': 'read it'}))\n"
    )
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = f"{sys.executable} {script}"

    assert process(connection, gid).state == State.DONE

    task = json.loads(seen_file.read_text())
    assert [(c["author"], c["text"]) for c in task["comments"]] == [
        ("Ann Lee", "Use the staging database")
    ]
    assert task["tagged_by"]["name"] == "Ann Lee"


# -- what it costs ---------------------------------------------------------------------------


@pytest.mark.parametrize("comments", [0, 20])
def test_the_thread_costs_one_stories_read_per_run(connection, pilot, seen, comments):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    gid = tagged(pilot, "Counted")
    for number in range(comments):
        pilot.person_comments(gid, ann, f"comment {number}")
    process(connection, gid)  # the token's user is read once, then cached
    pilot.reset_requests()
    second = tagged(pilot, "Counted again")
    for number in range(comments):
        pilot.person_comments(second, ann, f"comment {number}")

    process(connection, second)

    assert reads(pilot, f"/tasks/{second}/stories") == 1
    assert reads(pilot, "/users/me") == 0
