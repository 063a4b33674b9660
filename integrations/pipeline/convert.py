"""Turning an Asana task into the executor's task: id, title, description, labels,
project, URL, creation time and priority (from tags), and from the other reads
(`integrations.pipeline.gather`) the comment thread and who tagged it. Every field and its
type is listed in README *The executor's input*; names stay stable."""

from typing import TYPE_CHECKING, Any

from integrations.asana.richtext import to_text

if TYPE_CHECKING:
    from integrations.pipeline.gather import TaskContext

# `pilot-stop` is added by a person to stop a run; like the others, it keeps a task from
# being taken and is not one of its labels. `pilot-awaiting-approval` marks a task waiting
# for approval (approval mode); a person adds `pilot-approved` to approve it, which is not
# a status (it does not keep a task from being taken) and not a label either.
AWAITING_TAG = "pilot-awaiting-approval"
APPROVED_TAG = "pilot-approved"
STATUS_TAGS = ("pilot-in-progress", "pilot-done", "pilot-failed", "pilot-stop", AWAITING_TAG)
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
    "projects.name",
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


def _person(user: dict[str, str] | None, emails: dict[str, str]) -> dict[str, Any] | None:
    if not user or not user.get("gid"):
        return None
    return {"gid": user["gid"], "name": user.get("name") or "", "email": emails.get(user["gid"])}


def convert(task: dict[str, Any], context: "TaskContext | None" = None) -> dict[str, Any]:
    """The executor's view of a task fetched with DETAIL_FIELDS, and of the `context`
    gathered for it (without one, the thread is empty and the tagger unknown)."""
    gid = str(task["gid"])
    names = tag_names(task)
    projects = task.get("projects") or []
    emails = context.emails if context else {}
    stories = context.stories if context else None
    return {
        "id": f"ASANA-{gid}",
        "gid": gid,
        "title": task.get("name") or "",
        # The rich text keeps what plain `notes` flattens (table cells, list items, link
        # addresses); `notes` is the fallback when a task has no rich text.
        "description": to_text(task.get("html_notes")) or (task.get("notes") or "").strip(),
        # Status tags are pilotsite's bookkeeping, not something the task is about.
        "labels": [n for n in names if n not in BOOKKEEPING_TAGS],
        "project": (projects[0].get("name") or "") if projects else "",
        "url": task.get("permalink_url") or "",
        "created_at": task.get("created_at") or "",
        "priority": priority(names),
        "comments": [c.as_input() for c in stories.comments] if stories else [],
        "comments_omitted": stories.omitted if stories else 0,
        "tagged_by": _person(stories.tagger, emails) if stories else None,
    }
