"""The whole task reaches the executor: each field family of the converted task, read over
HTTP from the fake Asana, and what those reads cost."""

import json
import sys

import pytest

from integrations.asana.client import AsanaClient
from integrations.models import AsanaConnection, AsanaMapping, Employee, ProcessedTask
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


# -- the task read's own fields ----------------------------------------------------------------


def test_the_assignee_comes_with_the_mapped_employees_email(connection, pilot, seen):
    ann = person(pilot, "Ann Lee", "ann.asana@example.com")
    bob = person(pilot, "Bob Roy", "bob@example.com")
    employee = Employee.objects.create(name="Ann Lee", email="ann@example.com")
    AsanaMapping.objects.create(employee=employee, connection=connection, asana_user_gid=ann)
    for_ann, for_bob, nobody = (tagged(pilot, name) for name in ("Ann's", "Bob's", "Nobody's"))
    pilot.set_task(for_ann, assignee=ann)
    pilot.set_task(for_bob, assignee=bob)

    for gid in (for_ann, for_bob, nobody):
        process(connection, gid)

    assert [task["assignee"] for task in seen] == [
        {"gid": ann, "name": "Ann Lee", "email": "ann@example.com"},
        {"gid": bob, "name": "Bob Roy", "email": None},
        None,
    ]


def test_the_due_date_and_time_arrive_as_asana_gives_them(connection, pilot, seen):
    on_a_day = tagged(pilot, "Due on a day")
    at_a_time = tagged(pilot, "Due at a time")
    undated = tagged(pilot, "Whenever")
    pilot.set_task(on_a_day, due_on="2026-12-24")
    pilot.set_task(at_a_time, due_at="2026-12-01T17:00:00.000Z")

    for gid in (on_a_day, at_a_time, undated):
        process(connection, gid)

    assert [(t["due_on"], t["due_at"]) for t in seen] == [
        ("2026-12-24", None),
        ("2026-12-01", "2026-12-01T17:00:00.000Z"),
        (None, None),
    ]


def test_custom_fields_arrive_by_name_with_their_display_value(connection, pilot, seen):
    gid = tagged(pilot, "Estimated")
    pilot.set_custom_field(gid, "Estimate", 3.5, subtype="number")
    pilot.set_custom_field(gid, "Stage", "Review", subtype="enum")
    pilot.set_custom_field(gid, "Customer", "Acme")
    pilot.set_custom_field(gid, "Notes", None)

    process(connection, gid)

    assert seen[0]["custom_fields"] == {
        "Estimate": "3.5",
        "Stage": "Review",
        "Customer": "Acme",
        "Notes": None,
    }


def test_projects_arrive_with_their_sections_and_a_subtask_with_its_parent(connection, pilot, seen):
    web = pilot.add_project(pilot.workspace_gid, "Web")
    ops = pilot.add_project(pilot.workspace_gid, "Ops")
    parent = pilot.add_task(pilot.workspace_gid, "Launch", projects=[web])
    gid = tagged(pilot, "Write the release notes", projects=[web, ops], parent=parent)
    pilot.set_task(gid, sections={web: pilot.add_section(web, "Doing")})

    process(connection, gid)

    assert seen[0]["projects"] == [
        {"gid": web, "name": "Web", "section": "Doing"},
        {"gid": ops, "name": "Ops", "section": None},
    ]
    assert seen[0]["project"] == "Web"
    assert seen[0]["parent"] == {"gid": parent, "name": "Launch"}


# -- attachments and subtasks ------------------------------------------------------------------


def test_attachments_arrive_with_their_names_and_links(connection, pilot, seen):
    gid = tagged(pilot, "See the files")
    pilot.add_attachment(gid, "mockup.png")
    pilot.add_attachment(gid, "Design doc", url="https://docs.example.com/design")
    pilot.add_attachment(gid, "Not a web link", url="javascript:alert(1)")

    process(connection, gid)

    attachments = seen[0]["attachments"]
    assert [a["name"] for a in attachments] == ["mockup.png", "Design doc", "Not a web link"]
    assert attachments[0]["url"].startswith("https://app.asana.com/")
    assert attachments[1]["url"] == "https://docs.example.com/design"
    assert attachments[2]["url"] == ""


def test_subtasks_arrive_with_their_completion(connection, pilot, seen):
    gid = tagged(pilot, "Release")
    pilot.add_task(pilot.workspace_gid, "Tag the build", parent=gid, completed=True)
    pilot.add_task(pilot.workspace_gid, "Announce it", parent=gid)

    process(connection, gid)

    assert [(t["name"], t["completed"]) for t in seen[0]["subtasks"]] == [
        ("Tag the build", True),
        ("Announce it", False),
    ]


def test_subtasks_are_not_asked_for_when_the_task_has_none(connection, pilot, seen):
    gid = tagged(pilot, "Alone")

    process(connection, gid)

    assert seen[0]["subtasks"] == []
    assert reads(pilot, f"/tasks/{gid}/subtasks") == 0


# -- a command executor gets it all on standard input ----------------------------------------


def test_a_command_executor_receives_the_thread_on_stdin(connection, pilot, settings, tmp_path):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    project = pilot.add_project(pilot.workspace_gid, "Web")
    gid = pilot.add_task(pilot.workspace_gid, "Read the thread", projects=[project])
    pilot.person_changes_task(gid, ann, add=["pilot"])
    pilot.person_comments(gid, ann, "Use the staging database")
    pilot.set_task(gid, assignee=ann, due_on="2026-12-24")
    pilot.set_task(gid, sections={project: pilot.add_section(project, "Doing")})
    pilot.set_custom_field(gid, "Stage", "Review", subtype="enum")
    pilot.add_attachment(gid, "mockup.png")
    pilot.add_task(pilot.workspace_gid, "Announce it", parent=gid)
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
    assert task["assignee"]["name"] == "Ann Lee"
    assert task["due_on"] == "2026-12-24"
    assert task["custom_fields"] == {"Stage": "Review"}
    assert task["projects"] == [{"gid": project, "name": "Web", "section": "Doing"}]
    assert [a["name"] for a in task["attachments"]] == ["mockup.png"]
    assert [t["name"] for t in task["subtasks"]] == ["Announce it"]
    assert task["parent"] is None


# -- what it costs ---------------------------------------------------------------------------


def input_reads(fake, gid: str) -> list[str]:
    """The reads of the task's input, in order (the report's own requests left out)."""
    wanted = {f"/tasks/{gid}", f"/tasks/{gid}/stories", "/attachments", f"/tasks/{gid}/subtasks"}
    return [path for method, path, _ in fake.requests if method == "GET" and path in wanted]


@pytest.mark.parametrize("comments", [0, 20])
def test_a_run_reads_the_task_its_stories_and_its_attachments_once_each(
    connection, pilot, seen, comments
):
    ann = person(pilot, "Ann Lee", "ann@example.com")
    process(connection, tagged(pilot, "First"))  # the token's user is read once, then cached
    pilot.reset_requests()
    gid = tagged(pilot, "Counted")
    for number in range(comments):
        pilot.person_comments(gid, ann, f"comment {number}")

    process(connection, gid)

    assert input_reads(pilot, gid) == [f"/tasks/{gid}", f"/tasks/{gid}/stories", "/attachments"]
    assert reads(pilot, "/users/me") == 0
    assert len(seen[-1]["comments"]) == comments


def test_a_task_with_subtasks_costs_one_read_more(connection, pilot, seen):
    process(connection, tagged(pilot, "First"))
    pilot.reset_requests()
    gid = tagged(pilot, "Counted")
    pilot.add_task(pilot.workspace_gid, "A step", parent=gid)

    process(connection, gid)

    assert input_reads(pilot, gid) == [
        f"/tasks/{gid}",
        f"/tasks/{gid}/stories",
        "/attachments",
        f"/tasks/{gid}/subtasks",
    ]


def test_a_task_left_waiting_for_approval_is_not_read_for_the_executor(connection, pilot, seen):
    connection.rollout_mode = AsanaConnection.RolloutMode.APPROVAL
    connection.save()
    gid = tagged(pilot, "Needs a yes first")

    assert process(connection, gid).state == State.AWAITING_APPROVAL

    assert input_reads(pilot, gid) == [f"/tasks/{gid}"]
    assert seen == []


def test_the_token_user_is_read_once_for_many_runs(connection, pilot, seen):
    for number in range(3):
        process(connection, tagged(pilot, f"task {number}"))

    assert reads(pilot, "/users/me") == 1
