"""What the executor gets beyond the task read itself: the comment thread and the pilot
tagger (one stories read), read before the run is reported started.

Every read here is counted in README *Benchmarks* (`bench/task_input_bench.py`).
"""

from dataclasses import dataclass
from typing import Any

from integrations.asana.client import AsanaClient
from integrations.models import AsanaConnection, AsanaMapping
from integrations.pipeline.stories import TaskStories, read_stories, token_user_gid
from integrations.pipeline.tags import WorkspaceTags


@dataclass(frozen=True)
class TaskContext:
    """The reads `convert` turns into the executor's input besides the task: `stories`
    (comments and tagger) and `emails`, the mapped employees' addresses by Asana user GID
    (for the people the task names)."""

    stories: TaskStories
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


def gather(
    connection: AsanaConnection, client: AsanaClient, task: dict[str, Any], tags: WorkspaceTags
) -> TaskContext:
    """Read what the executor's input needs besides `task` (fetched with DETAIL_FIELDS).
    Costs one stories read (more pages past 100 stories), plus `GET /users/me` once a day
    per process. Raises AsanaError when Asana cannot answer."""
    stories = read_stories(
        client,
        str(task["gid"]),
        own_user_gid=token_user_gid(client),
        pilot_tag_gids=tags.pilot_gids,
    )
    return TaskContext(stories=stories, emails=mapped_emails(connection, _people(task, stories)))
