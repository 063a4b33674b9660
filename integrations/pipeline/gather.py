"""What the executor gets beyond the task read itself, read before the run is reported
started: the comment thread and the pilot tagger (one stories read), the attachments (one
read), the subtasks (one read, only when the task has any), and the mapped employees'
email addresses (one query).

Every read here is counted in README *Benchmarks* (`bench/task_input_bench.py`).
"""

from dataclasses import dataclass
from itertools import islice
from typing import Any

from integrations.asana.client import AsanaClient
from integrations.models import AsanaConnection, AsanaMapping
from integrations.pipeline.stories import TaskStories, read_stories, token_user_gid
from integrations.pipeline.tags import WorkspaceTags
from pilotsite.untrusted import web_url

# From getAttachmentsForObject's and getSubtasksForTask's opt_fields enums: what is used.
ATTACHMENT_FIELDS = ("name", "view_url", "permanent_url")
SUBTASK_FIELDS = ("name", "completed")
# One page each (the client's page is 100): the first 100 are given, no second request.
MAX_ATTACHMENTS = 100
MAX_SUBTASKS = 100


@dataclass(frozen=True)
class TaskContext:
    """The reads `convert` turns into the executor's input besides the task: `stories`
    (comments and tagger), `attachments` (`{"name", "url"}`), `subtasks`
    (`{"gid", "name", "completed"}`) and `emails`, the mapped employees' addresses by
    Asana user GID (for the people the task names)."""

    stories: TaskStories
    attachments: list[dict[str, str]]
    subtasks: list[dict[str, Any]]
    emails: dict[str, str]


def _people(task: dict[str, Any], stories: TaskStories) -> set[str]:
    gids = {stories.tagger["gid"]} if stories.tagger else set()
    assignee = task.get("assignee")
    if isinstance(assignee, dict) and assignee.get("gid"):
        gids.add(str(assignee["gid"]))
    return gids


def mapped_emails(connection: AsanaConnection, user_gids: set[str]) -> dict[str, str]:
    """The email addresses of the employees mapped to these Asana users (one query).
    pilotsite's mapping is where it sees a user's address: Asana's task read cannot return
    it (`assignee.email` is not among getTask's opt_fields)."""
    if not user_gids:
        return {}
    rows = AsanaMapping.objects.filter(
        connection=connection, asana_user_gid__in=user_gids
    ).values_list("asana_user_gid", "employee__email")
    return {gid: email for gid, email in rows if email}


def _attachment(item: dict[str, Any]) -> dict[str, str]:
    # Only http(s) links are passed on (an attachment's address comes from outside).
    url = web_url(item.get("view_url")) or web_url(item.get("permanent_url"))
    name = item.get("name")
    return {"name": name if isinstance(name, str) else "", "url": url}


def _subtask(item: dict[str, Any]) -> dict[str, Any]:
    name = item.get("name")
    return {
        "gid": str(item.get("gid") or ""),
        "name": name if isinstance(name, str) else "",
        "completed": item.get("completed") is True,
    }


def has_subtasks(task: dict[str, Any]) -> bool:
    """Whether the task read says it has subtasks (`num_subtasks` above 0)."""
    count = task.get("num_subtasks")
    return isinstance(count, int) and not isinstance(count, bool) and count > 0


def gather(
    connection: AsanaConnection, client: AsanaClient, task: dict[str, Any], tags: WorkspaceTags
) -> TaskContext:
    """Read what the executor's input needs besides `task` (fetched with DETAIL_FIELDS):
    one stories read (more pages past 100 stories), one attachments read, one subtasks
    read when `num_subtasks` says there are any, and `GET /users/me` once a day per
    process. Raises AsanaError when Asana cannot answer."""
    gid = str(task["gid"])
    stories = read_stories(
        client, gid, own_user_gid=token_user_gid(client), pilot_tag_gids=tags.pilot_gids
    )
    attachments = [
        _attachment(a) for a in islice(client.attachments(gid, ATTACHMENT_FIELDS), MAX_ATTACHMENTS)
    ]
    subtasks = (
        [_subtask(t) for t in islice(client.subtasks(gid, SUBTASK_FIELDS), MAX_SUBTASKS)]
        if has_subtasks(task)
        else []
    )
    return TaskContext(
        stories=stories,
        attachments=attachments,
        subtasks=subtasks,
        emails=mapped_emails(connection, _people(task, stories)),
    )
