"""Converting an Asana task into the executor's task."""

import pytest

from integrations.pipeline.convert import convert

TASK = {
    "gid": "1201",
    "name": "Fix the login page",
    "notes": "It breaks on Safari",
    "html_notes": "<body>It breaks on <strong>Safari</strong></body>",
    "completed": False,
    "created_at": "2026-01-02T03:04:05.000Z",
    "permalink_url": "https://app.asana.com/0/0/1201",
    "tags": [{"gid": "1", "name": "pilot"}, {"gid": "2", "name": "bug"}],
    "memberships": [
        {"project": {"gid": "9", "name": "Web"}, "section": {"gid": "91", "name": "Doing"}},
        {"project": {"gid": "10", "name": "Other"}, "section": None},
    ],
}


def test_conversion_maps_every_field():
    assert convert(TASK) == {
        "id": "ASANA-1201",
        "gid": "1201",
        "title": "Fix the login page",
        "description": "It breaks on Safari",
        "labels": ["pilot", "bug"],
        "project": "Web",
        "url": "https://app.asana.com/0/0/1201",
        "created_at": "2026-01-02T03:04:05.000Z",
        "priority": None,
        "assignee": None,
        "due_on": None,
        "due_at": None,
        "custom_fields": {},
        "projects": [
            {"gid": "9", "name": "Web", "section": "Doing"},
            {"gid": "10", "name": "Other", "section": None},
        ],
        "parent": None,
        "comments": [],
        "comments_omitted": 0,
        "tagged_by": None,
        "attachments": [],
        "subtasks": [],
    }


def test_description_comes_from_the_rich_text_keeping_its_structure():
    task = TASK | {
        "notes": "Steps open & log in crash Browser Safari",
        "html_notes": "<body><strong>Steps</strong><ul><li>open &amp; log in</li><li>crash</li></ul>"
        "<table><tr><td>Browser</td><td>Safari</td></tr></table></body>",
    }
    assert convert(task)["description"] == "Steps\n- open & log in\n- crash\nBrowser | Safari"


def test_description_falls_back_to_notes_without_rich_text():
    assert convert(TASK | {"html_notes": None})["description"] == "It breaks on Safari"


def test_status_tags_are_not_labels():
    task = TASK | {"tags": [{"name": "pilot"}, {"name": "pilot-in-progress"}]}
    assert convert(task)["labels"] == ["pilot"]


def test_no_project_gives_an_empty_project_name():
    assert convert(TASK | {"memberships": []})["project"] == ""


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["Urgent"], "urgent"),
        (["CRITICAL"], "urgent"),
        (["high"], "high"),
        (["Medium"], "medium"),
        (["low"], "low"),
        (["low", "urgent"], "urgent"),
        (["bug"], None),
    ],
)
def test_priority_comes_from_tags_case_insensitively(tags, expected):
    task = TASK | {"tags": [{"name": t} for t in tags]}
    assert convert(task)["priority"] == expected
