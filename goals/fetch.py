"""Everything a goal sync reads from Asana, read before anything is written.

Request budget (see README): the workspace's goal list is read once (`GET /goals?workspace=`,
100 per page) and gives every goal's owner, status, dates and metric, so it serves every
employee and also supplies the details of sub-goals. Asana exposes no parent-goal field on the
goal list (the `opt_fields` enum has none) and `GET /goal_relationships` requires one
`supported_goal`, so sub-goals cost one `GET /goal_relationships?supported_goal=<gid>
&resource_subtype=subgoal` per *kept* goal — never for skipped or truncated goals. Those
lookups run on a small thread pool, within the client's per-token budget. A sub-goal missing
from the list (for example a private goal shared with the token's user) is read with
`GET /goals/<gid>`.
"""

from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from goals.fields import GOAL_OPT_FIELDS, RELATIONSHIP_OPT_FIELDS, owner_gid
from goals.models import GOALS_PER_EMPLOYEE_MAX
from integrations.asana.client import AsanaClient
from integrations.asana.errors import AsanaForbidden, AsanaNotFound

Raw = dict[str, Any]


@dataclass
class WorkspaceGoals:
    """The workspace's goal list, grouped by owner."""

    by_owner: dict[str, list[Raw]] = field(default_factory=dict)
    index: dict[str, Raw] = field(default_factory=dict)
    unowned: int = 0
    unmapped: int = 0


def fetch_workspace_goals(
    client: AsanaClient, workspace_gid: str, mapped_user_gids: set[str]
) -> WorkspaceGoals:
    result = WorkspaceGoals()
    for raw in client.goals(workspace_gid, GOAL_OPT_FIELDS):
        gid = str(raw.get("gid") or "")
        if not gid or gid in result.index:
            continue
        result.index[gid] = raw
        owner = owner_gid(raw)
        if owner is None:
            result.unowned += 1
        elif owner not in mapped_user_gids:
            result.unmapped += 1
        else:
            result.by_owner.setdefault(owner, []).append(raw)
    return result


def kept_goals(owned: list[Raw]) -> list[Raw]:
    """The first goals in Asana's order, at most the per-employee cap."""
    return owned[:GOALS_PER_EMPLOYEE_MAX]


def _subgoal_refs(client: AsanaClient, goal_gid: str) -> list[Raw]:
    refs = []
    for relationship in client.subgoal_relationships(goal_gid, RELATIONSHIP_OPT_FIELDS):
        if relationship.get("resource_subtype") not in (None, "subgoal"):
            continue
        resource = relationship.get("supporting_resource") or {}
        if resource.get("gid"):
            refs.append({"gid": str(resource["gid"]), "name": resource.get("name") or ""})
    return refs


def iter_subgoal_refs(
    client: AsanaClient, goal_lists: Sequence[Sequence[Raw]], workers: int | None = None
) -> Generator[dict[str, list[Raw]], None, None]:
    """For each list of goals (one per employee), in order: {goal gid: [sub-goal refs]}.

    Every lookup is queued at once so the pool stays busy across employees; the caller gets
    one employee at a time, which is what its progress counter shows. The first failure
    cancels whatever has not started and is raised.
    """
    workers = workers or settings.GOALS_SYNC_WORKERS
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="goal-sync")
    try:
        futures: list[list[tuple[str, Future]]] = [
            [(str(g["gid"]), pool.submit(_subgoal_refs, client, str(g["gid"]))) for g in goals]
            for goals in goal_lists
        ]
        for employee_futures in futures:
            yield {gid: future.result() for gid, future in employee_futures}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def subgoal_details(client: AsanaClient, refs: list[Raw], index: dict[str, Raw]) -> list[Raw]:
    """Sub-goal records with status, due date and metric, from the list or one read each."""
    details = []
    for ref in refs:
        raw = index.get(ref["gid"])
        if raw is None:
            try:
                raw = client.goal(ref["gid"], GOAL_OPT_FIELDS) or {}
            except (AsanaNotFound, AsanaForbidden):
                # Only the name is visible to this token; keep the key result with it.
                raw = {}
            index[ref["gid"]] = raw = {"gid": ref["gid"], "name": ref["name"], **raw}
        details.append(raw)
    return details
