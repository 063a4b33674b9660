"""Turning an Asana task into the executor's task: id, title, description, labels,
priority (from tags), URL, creation time, assignee, due date, custom fields, projects with
their sections and the parent task, from the task read; and from the other reads
(`integrations.pipeline.gather`) the comment thread, who tagged it, its attachments and
subtasks. Every field and its type is listed in README *The executor's input*; names stay
stable. Asana's answers are not trusted to have the documented types: a value of the wrong
type counts as missing.
"""

from typing import TYPE_CHECKING, Any

from integrations.asana.richtext import to_text

if TYPE_CHECKING:
    from integrations.pipeline.gather import TaskContext

# `pilot-stop` is added by a person to stop a run; like the others, it keeps a task from
# being taken and is not one of its labels. `pilot-awaiting-approval` marks a task waiting
# for approval (approval mode), `pilot-needs-input` one waiting for a reply to its
# executor's question; a person adds `pilot-approved` to approve it, which is not a status
# (it does not keep a task from being taken) and not a label either.
AWAITING_TAG = "pilot-awaiting-approval"
NEEDS_INPUT_TAG = "pilot-needs-input"
APPROVED_TAG = "pilot-approved"
STATUS_TAGS = (
    "pilot-in-progress",
    "pilot-done",
    "pilot-failed",
    "pilot-stop",
    AWAITING_TAG,
    NEEDS_INPUT_TAG,
)
# The tags a task carries while it waits on a person (an approval, a reply): allowed on the
# claim that ends the wait, until its run has started (`tags.ineligible_reason`).
WAIT_TAGS = (AWAITING_TAG, NEEDS_INPUT_TAG)
BOOKKEEPING_TAGS = (*STATUS_TAGS, APPROVED_TAG)
# Everything conversion and the eligibility check need, in one request.
DETAIL_FIELDS = (
    "name",
    "notes",
    "html_notes",
    "completed",
    "created_at",
    "workspace",
    "resource_subtype",
    "approval_status",
    "permalink_url",
    "tags.name",
    "assignee.name",
    "due_on",
    "due_at",
    "custom_fields.name",
    "custom_fields.display_value",
    "memberships.project.name",
    "memberships.section.name",
    "parent.name",
    "num_subtasks",
)
# Highest first: a task tagged both `low` and `urgent` is urgent.
PRIORITY_TAGS = (
    ("urgent", "urgent"),
    ("critical", "urgent"),
    ("high", "high"),
    ("medium", "medium"),
    ("low", "low"),
)


def tag_names(task: dict[str, Any]) -> list[str]:
    return [str(t.get("name") or "") for t in task.get("tags") or [] if t.get("name")]


def priority(names: list[str]) -> str | None:
    lowered = {n.strip().lower() for n in names}
    for tag, level in PRIORITY_TAGS:
        if tag in lowered:
            return level
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ref(value: Any) -> dict[str, str] | None:
    """A compact object as `{"gid", "name"}`, or None when it is not one."""
    if not isinstance(value, dict) or not value.get("gid"):
        return None
    return {"gid": str(value["gid"]), "name": _str(value.get("name"))}


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _person(user: dict[str, str] | None, emails: dict[str, str]) -> dict[str, Any] | None:
    if not user or not user.get("gid"):
        return None
    return {"gid": user["gid"], "name": user.get("name") or "", "email": emails.get(user["gid"])}


def custom_fields(task: dict[str, Any]) -> dict[str, str | None]:
    """Each custom field's name and `display_value` (Asana's string for any field type;
    null when the field is empty). Of two fields with one name, the first is kept."""
    found: dict[str, str | None] = {}
    for field in _list(task.get("custom_fields")):
        name = _str(field.get("name"))
        if name and name not in found:
            shown = field.get("display_value")
            found[name] = shown if isinstance(shown, str) else None
    return found


def projects(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's projects, each with the section it is in (`memberships`; entries of
    other kinds, which the spec says may be added, are skipped)."""
    found: list[dict[str, Any]] = []
    for membership in _list(task.get("memberships")):
        project = _ref(membership.get("project"))
        if project is None:
            continue
        section = _ref(membership.get("section"))
        found.append({**project, "section": section["name"] if section else None})
    return found


def convert(task: dict[str, Any], context: "TaskContext | None" = None) -> dict[str, Any]:
    """The executor's view of a task fetched with DETAIL_FIELDS, and of the `context`
    gathered for it (without one, the thread, attachments and subtasks are empty and the
    tagger unknown)."""
    gid = str(task["gid"])
    names = tag_names(task)
    emails = context.emails if context else {}
    stories = context.stories if context else None
    in_projects = projects(task)
    return {
        "id": f"ASANA-{gid}",
        "gid": gid,
        "title": _str(task.get("name")),
        # The rich text keeps what plain `notes` flattens (table cells, list items, link
        # addresses); `notes` is the fallback when a task has no rich text.
        "description": to_text(task.get("html_notes")) or _str(task.get("notes")).strip(),
        # Status tags are pilotsite's bookkeeping, not something the task is about.
        "labels": [n for n in names if n not in BOOKKEEPING_TAGS],
        "project": in_projects[0]["name"] if in_projects else "",
        "url": _str(task.get("permalink_url")),
        "created_at": _str(task.get("created_at")),
        "priority": priority(names),
        "assignee": _person(_ref(task.get("assignee")), emails),
        "due_on": _str(task.get("due_on")) or None,
        "due_at": _str(task.get("due_at")) or None,
        "custom_fields": custom_fields(task),
        "projects": in_projects,
        "parent": _ref(task.get("parent")),
        "comments": [c.as_input() for c in stories.comments] if stories else [],
        "comments_omitted": stories.omitted if stories else 0,
        "tagged_by": _person(stories.tagger, emails) if stories else None,
        "attachments": list(context.attachments) if context else [],
        "subtasks": list(context.subtasks) if context else [],
    }
