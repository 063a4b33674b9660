"""The fake Asana's endpoints: a route table (method + path regex -> handler) and small handlers.

Handlers run with the fake's lock held (except POST /webhooks, whose handshake calls out to the
target, which may call back) and return (status, payload) or raise ApiError. By the time a
handler runs, the request matched the contract, so types and enum values are already right.
"""

import json
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from integrations.asana.fake.call import Call, Result, parse_form, rich_text, workspace_of
from integrations.asana.fake.render import ApiError, now_iso

if TYPE_CHECKING:
    from integrations.asana.fake.api import FakeAsana

# Asana requires https webhook targets; plain http is let through for local test servers only.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "testserver"}


# ---- users, workspaces, projects -------------------------------------------------------------


def get_user(call: Call) -> Result:
    """By GID, "me", or email address, as Asana allows."""
    gid = call.params["user_gid"]
    if gid == "me":
        return call.one(call.objects[call.user_gid])
    if "@" in gid:
        by_email = [u for u in call.records("user") if u["email"].lower() == gid.lower()]
        if not by_email:
            raise ApiError(404, f"user: Unknown object: {gid}")
        gid = by_email[0]["gid"]
    return call.one(call.get("user", gid, "user"))


def list_users(call: Call) -> Result:
    workspace = call.get("workspace", call.query.get("workspace"), "workspace")["gid"]
    return call.page([u for u in call.records("user") if workspace in u["workspaces"]])


def list_workspaces(call: Call) -> Result:
    """Only the workspaces the token's user is a member of: the spec (asana_oas.yaml, GET
    /workspaces) says "all workspaces visible to the authorized user"."""
    member_of = call.objects[call.user_gid]["workspaces"]
    return call.page([w for w in call.records("workspace") if w["gid"] in member_of])


def get_workspace(call: Call) -> Result:
    return call.one(call.get("workspace", call.params["workspace_gid"], "workspace"))


def get_project(call: Call) -> Result:
    return call.one(call.get("project", call.params["project_gid"], "project"))


# ---- tags and tasks ---------------------------------------------------------------------------


def list_workspace_tags(call: Call) -> Result:
    workspace = call.get("workspace", call.params["workspace_gid"], "workspace")["gid"]
    return call.page(call.records("tag", workspace=workspace))


def create_workspace_tag(call: Call) -> Result:
    workspace = call.get("workspace", call.params["workspace_gid"], "workspace")["gid"]
    return call.one(call.objects[call.fake.add_tag(workspace, call.require("name"))], 201)


def list_tags(call: Call) -> Result:
    workspace = call.get("workspace", call.query.get("workspace"), "workspace")["gid"]
    return call.page(call.records("tag", workspace=workspace))


def create_tag(call: Call) -> Result:
    workspace = call.get("workspace", call.require("workspace"), "workspace")["gid"]
    return call.one(call.objects[call.fake.add_tag(workspace, call.require("name"))], 201)


def list_tag_tasks(call: Call) -> Result:
    tag = call.get("tag", call.params["tag_gid"], "tag")["gid"]
    return call.page(call.fake.tasks_with_tag(tag))


# Search parameters the fake implements; any other the spec allows is refused with 400 (so a
# client never believes a filter applied that the fake ignored).
_SEARCH_FILTERS = {
    "tags.any",
    "tags.not",
    "tags.all",
    "completed",
    "created_at.after",
    "created_at.before",
    "sort_by",
    "sort_ascending",
    "limit",
    "opt_fields",
}
# The operation's description: "Page sizes are limited to a maximum of 100 items, and can be
# specified by the `limit` query parameter" (the spec lists no `limit` parameter itself).
SEARCH_MAX_LIMIT = 100


def search_tasks(call: Call) -> Result:
    """GET /workspaces/{workspace_gid}/tasks/search (asana_oas.yaml, searchTasksForWorkspace).

    As the spec says: premium only ("Making a search request using credentials of a
    non-premium user will result in a `402 Payment Required` error"); no `next_page` ("the
    traditional pagination [...] is not available here": page by sorting on created_at and
    asking for `created_at.after` the last one seen); eventually consistent (the fake's
    `search_index_delay`); `sort_by` defaults to `modified_at`, `sort_ascending` to false.
    Results are what the index matched, rendered from the task as it is now.
    """
    workspace = call.get("workspace", call.params["workspace_gid"], "workspace")
    if not workspace.get("_premium", True):
        raise ApiError(402, "Search is only available to premium users.")
    unknown = sorted(set(call.query) - _SEARCH_FILTERS)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: not supported by the fake Asana's search")
    raw_limit = call.query.get("limit", str(SEARCH_MAX_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= SEARCH_MAX_LIMIT:
        raise ApiError(400, f"limit: Must be between 1 and {SEARCH_MAX_LIMIT}")
    limit = int(raw_limit)

    def gids(name: str) -> set[str]:
        return {g for g in call.query.get(name, "").split(",") if g}

    any_tags, not_tags, all_tags = gids("tags.any"), gids("tags.not"), gids("tags.all")
    completed = call.query.get("completed")
    after, before = call.query.get("created_at.after"), call.query.get("created_at.before")
    hits = []
    for gid, seen in call.fake.search_view().items():
        if seen["workspace"] != workspace["gid"] or gid not in call.objects:
            continue
        if any_tags and not any_tags & seen["tags"]:
            continue
        if not_tags & seen["tags"] or not all_tags <= seen["tags"]:
            continue
        if completed is not None and seen["completed"] != (completed == "true"):
            continue
        if after and not _after(seen["created_at"], after):
            continue
        if before and not _after(before, seen["created_at"]):
            continue
        hits.append((gid, seen))
    sort_by = call.query.get("sort_by", "modified_at")
    if sort_by not in ("created_at", "modified_at"):
        raise ApiError(
            400, f"sort_by: the fake Asana sorts by created_at or modified_at, not {sort_by}"
        )
    descending = call.query.get("sort_ascending", "false") != "true"
    hits.sort(key=lambda hit: (_moment(hit[1][sort_by]), int(hit[0])), reverse=descending)
    return 200, {"data": [call.out(call.objects[gid]) for gid, _ in hits[:limit]]}


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _after(value: str, bound: str) -> bool:
    return _moment(value) > _moment(bound)


def get_task(call: Call) -> Result:
    return call.one(call.get("task", call.params["task_gid"], "task"))


def list_subtasks(call: Call) -> Result:
    """GET /tasks/{task_gid}/subtasks (getSubtasksForTask): the task's subtasks, compact."""
    task = call.get("task", call.params["task_gid"], "task")["gid"]
    return call.page(call.records("task", parent=task))


def update_task(call: Call) -> Result:
    task = call.get("task", call.params["task_gid"], "task")
    data, now = call.data, now_iso()
    # Checked before anything changes: a refused update leaves the task as it was.
    plain = rich_text("html_notes", data["html_notes"]) if "html_notes" in data else None
    if "name" in data:
        task["name"] = data["name"]
    if "notes" in data:
        task["notes"] = data["notes"]
        task["html_notes"] = f"<body>{escape(data['notes'])}</body>"
    if plain is not None:
        task["notes"], task["html_notes"] = plain, data["html_notes"]
    completed = data.get("completed", task["completed"])
    if task["resource_subtype"] == "approval":
        # TaskBase.approval_status: "kept in sync with `completed` ... If you set completed to
        # true, this field will be set to `approved`" (pending is the only open status).
        if "approval_status" in data:
            task["approval_status"] = data["approval_status"]
            completed = data["approval_status"] != "pending"
        elif "completed" in data and data["completed"] != task["completed"]:
            task["approval_status"] = "approved" if completed else "pending"
    if completed != task["completed"]:
        task["completed"] = completed
        task["completed_at"] = now if completed else None
    task["modified_at"] = now
    call.fake._index_for_search(task["gid"])
    return call.one(task)


def _tag_change(call: Call, adding: bool) -> Result:
    task = call.get("task", call.params["task_gid"], "task")
    tag = call.get("tag", call.require("tag"), "tag")
    if tag["workspace"] != task["workspace"]:
        raise ApiError(400, "tag: The tag and the task must be in the same workspace")
    if (tag["gid"] in task["tags"]) == adding:
        return 200, {"data": {}}  # already so: Asana answers the same and changes nothing
    if adding:
        task["tags"].append(tag["gid"])
        call.fake._note_tagged(task["gid"], tag["gid"])
    else:
        task["tags"].remove(tag["gid"])
    task["modified_at"] = now_iso()
    call.fake._index_for_search(task["gid"])
    subtype = "added_to_tag" if adding else "removed_from_tag"
    text = f"{'added to' if adding else 'removed from'} {tag['name']}"
    call.fake.add_story(task["gid"], call.user_gid, subtype, text, tag_gid=tag["gid"])
    return 200, {"data": {}}


def list_stories(call: Call) -> Result:
    task = call.get("task", call.params["task_gid"], "task")["gid"]
    return call.page(call.records("story", target=task))


def create_story(call: Call) -> Result:
    """`POST /tasks/{task_gid}/stories`: a comment by the token's user. Rich text may
    @-mention a user as `<a data-asana-gid="USER_GID"/>` (developers.asana.com "Rich text":
    a link to an Asana object by its GID); Asana stores the mention as a link naming the
    user (`@Name`, `data-asana-type="user"`), and `text` reads `@Name`."""
    task = call.get("task", call.params["task_gid"], "task")
    if call.data.get("html_text"):
        rich_text("html_text", call.data["html_text"])
        html = _mentions(call, call.data["html_text"])
        text = rich_text("html_text", html)
    else:
        text, html = call.require("text"), None
    story = call.fake.add_story(task["gid"], call.user_gid, "comment_added", text, html_text=html)
    return call.one(call.objects[story], 201)


_MENTION = re.compile(r'<a\s+data-asana-gid="(\d+)"\s*/>')


def _mentions(call: Call, html: str) -> str:
    """Each `<a data-asana-gid="…"/>` of a user as Asana stores it; a GID that is no user
    the caller can see is refused (400), as invalid rich text is."""

    def stored(match: re.Match[str]) -> str:
        try:
            user = call.get("user", match.group(1), "html_text")
        except ApiError as exc:
            raise ApiError(400, f"html_text: XML is invalid: {exc.message}") from exc
        return (
            f'<a href="https://app.asana.com/0/profile/{user["gid"]}" '
            f'data-asana-gid="{user["gid"]}" data-asana-accessible="true" '
            f'data-asana-type="user" data-asana-dynamic="true">@{escape(user["name"])}</a>'
        )

    return _MENTION.sub(stored, html)


def update_story(call: Call) -> Result:
    """`PUT /stories/{story_gid}` ("Update a story"): "Only comment stories can have their
    text updated ... Only one of `text` and `html_text` can be specified." Real Asana also
    lets only the comment's author edit it (403 otherwise)."""
    story = call.get("story", call.params["story_gid"], "story")
    if "text" in call.data and "html_text" in call.data:
        raise ApiError(400, "text: Only one of text and html_text can be specified")
    if ("text" in call.data or "html_text" in call.data) and story["type"] != "comment":
        raise ApiError(400, "text: Only comment stories can have their text updated")
    if story["created_by"] != call.user_gid:
        raise ApiError(403, "You do not have permission to edit this story")
    if call.data.get("html_text"):
        story["html_text"] = call.data["html_text"]
        story["text"] = rich_text("html_text", story["html_text"])
    elif "text" in call.data:
        story["text"] = str(call.data["text"])
        story["html_text"] = f"<body>{escape(story['text'])}</body>"
    story["is_edited"] = True
    return call.one(story)


# ---- attachments ------------------------------------------------------------------------------


def list_attachments(call: Call) -> Result:
    parent = call.get("task", call.query.get("parent"), "parent")["gid"]
    return call.page(call.records("attachment", parent=parent))


def create_attachment(call: Call) -> Result:
    parent = call.get("task", call.require("parent"), "parent")["gid"]
    if call.data.get("resource_subtype", "asana") != "external":
        raise ApiError(400, "file: Missing input (the fake Asana only takes external attachments)")
    url, name = call.require("url"), call.require("name")
    gid = call.fake._new(
        "attachment",
        resource_subtype="external",
        name=name,
        host="external",
        view_url=url,
        permanent_url=url,
        download_url=None,
        created_at=now_iso(),
        parent=parent,
        connected_to_app=False,
    )
    return call.one(call.objects[gid])  # Asana answers 200 here, not 201


# ---- goals ------------------------------------------------------------------------------------


def list_goals(call: Call) -> Result:
    call.check_goals_plan()
    workspace = call.get("workspace", call.query.get("workspace"), "workspace")["gid"]
    goals = call.records("goal", workspace=workspace)
    if call.query.get("time_periods"):
        wanted = set(call.query["time_periods"].split(","))
        goals = [g for g in goals if (g["time_period"] or {}).get("gid") in wanted]
    return call.page(goals)


def get_goal(call: Call) -> Result:
    call.check_goals_plan()
    return call.one(call.get("goal", call.params["goal_gid"], "goal"))


def list_goal_relationships(call: Call) -> Result:
    call.check_goals_plan()
    goal = call.get("goal", call.query.get("supported_goal"), "supported_goal")["gid"]
    found = call.records("goal_relationship", supported_goal=goal)
    if "resource_subtype" in call.query:
        found = [r for r in found if r["resource_subtype"] == call.query["resource_subtype"]]
    return call.page(found)


# ---- status updates ----------------------------------------------------------------------------

# asana_oas.yaml, StatusUpdateBase.status_type: "The valid values for `status_type` depend on
# the parent of the status update: [...] Goals: `on_track`, `at_risk`, `off_track`, `achieved`,
# `partial`, `missed`, `dropped`." (`on_hold` and `complete` are for projects and portfolios.)
GOAL_STATUS_TYPES = frozenset(
    {"on_track", "at_risk", "off_track", "achieved", "partial", "missed", "dropped"}
)


def list_status_updates(call: Call) -> Result:
    parent = call.get(None, call.query.get("parent"), "parent")["gid"]
    return call.page(call.records("status_update", parent=parent))


def create_status_update(call: Call) -> Result:
    """POST /status_updates (createStatusForObject): only goals are modelled as parents."""
    parent = call.get(None, call.require("parent"), "parent")
    if parent["resource_type"] != "goal":
        raise ApiError(400, "parent: the fake Asana models status updates on goals only")
    call.check_goals_plan()
    status_type, text = call.require("status_type"), call.require("text")
    if status_type not in GOAL_STATUS_TYPES:
        raise ApiError(400, f"status_type: {status_type} is not a valid status for a goal")
    gid = call.fake._new(
        "status_update",
        resource_subtype="goal_status_update",
        title=str(call.data.get("title") or ""),
        text=text,
        status_type=status_type,
        parent=parent["gid"],
        author=call.user_gid,
        created_by=call.user_gid,
        created_at=now_iso(),
        modified_at=now_iso(),
        liked=False,
        likes=[],
        num_likes=0,
    )
    # GoalResponse.current_status_update: "The latest `status_update` posted to this goal."
    parent["current_status_update"] = gid
    return call.one(call.objects[gid], 201)


def parent_goals(call: Call) -> Result:
    call.check_goals_plan()
    goal = call.get("goal", call.params["goal_gid"], "goal")["gid"]
    links = call.records("goal_relationship", supporting_resource=goal)
    return 200, {"data": [call.out(call.objects[r["supported_goal"]]) for r in links]}


# ---- webhooks and events ----------------------------------------------------------------------


def create_webhook(call: Call) -> Result:
    fake = call.fake
    with fake._lock:
        resource = call.get(None, call.require("resource"), "resource")
        target = call.require("target")
        url = urlsplit(target)
        if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOCAL_HOSTS):
            raise ApiError(400, "target: Webhook targets must use https")
        if resource["resource_type"] == "workspace" and not call.data.get("filters"):
            raise ApiError(400, "filters: Workspace-level webhooks require filters")
        workspace = workspace_of(call.objects, resource)
    secret = secrets.token_hex(32)
    # Like Asana, the handshake happens before the create call answers (and before the webhook
    # has a gid); outside the lock, because the target may call back into the fake.
    if not fake.handshake(target, secret):
        raise ApiError(400, "The remote server did not respond with the handshake secret.")
    with fake._lock:
        gid = fake._new(
            "webhook",
            resource=resource["gid"],
            target=target,
            active=True,
            created_at=now_iso(),
            last_failure_at=None,
            last_failure_content="",
            last_success_at=None,
            delivery_retry_count=0,
            next_attempt_after=None,
            failure_deletion_timestamp=None,
            filters=call.data.get("filters") or [],
            _secret=secret,
            _workspace=workspace,
        )
        return call.one(call.objects[gid], 201)


def list_webhooks(call: Call) -> Result:
    workspace = call.get("workspace", call.query.get("workspace"), "workspace")["gid"]
    hooks = call.records("webhook", _workspace=workspace)
    if "resource" in call.query:
        hooks = [h for h in hooks if h["resource"] == call.query["resource"]]
    return call.page(hooks)


def get_webhook(call: Call) -> Result:
    return call.one(call.get("webhook", call.params["webhook_gid"], "webhook"))


def delete_webhook(call: Call) -> Result:
    call.fake._delete(call.get("webhook", call.params["webhook_gid"], "webhook")["gid"])
    return 200, {"data": {}}


def get_events(call: Call) -> Result:
    """Minimal: the fake records no events, so a valid sync token always gets an empty list."""
    call.get(None, call.query.get("resource"), "resource")
    fresh = secrets.token_hex(16)
    if not call.query.get("sync"):
        message = "Sync token invalid or too old. If you are attempting to keep resources in sync, you must fetch the full dataset for this query now and use the new sync token for the next sync."
        return 412, ApiError(412, message).body() | {"sync": fresh}
    return 200, {"data": [], "sync": fresh, "has_more": False}


# ---- routing ----------------------------------------------------------------------------------

# Paths as the contract writes them; "{task_gid}" becomes a named group.
ROUTES: list[tuple[str, re.Pattern[str], Callable[[Call], Result]]] = [
    (method, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)), handler)
    for method, path, handler in [
        ("GET", "/users/{user_gid}", get_user),
        ("GET", "/users", list_users),
        ("GET", "/workspaces", list_workspaces),
        ("GET", "/workspaces/{workspace_gid}", get_workspace),
        ("GET", "/workspaces/{workspace_gid}/tags", list_workspace_tags),
        ("POST", "/workspaces/{workspace_gid}/tags", create_workspace_tag),
        ("GET", "/tags", list_tags),
        ("POST", "/tags", create_tag),
        ("GET", "/tags/{tag_gid}/tasks", list_tag_tasks),
        ("GET", "/workspaces/{workspace_gid}/tasks/search", search_tasks),
        ("GET", "/tasks/{task_gid}", get_task),
        ("PUT", "/tasks/{task_gid}", update_task),
        ("GET", "/tasks/{task_gid}/subtasks", list_subtasks),
        ("POST", "/tasks/{task_gid}/addTag", lambda call: _tag_change(call, adding=True)),
        ("POST", "/tasks/{task_gid}/removeTag", lambda call: _tag_change(call, adding=False)),
        ("GET", "/tasks/{task_gid}/stories", list_stories),
        ("POST", "/tasks/{task_gid}/stories", create_story),
        ("PUT", "/stories/{story_gid}", update_story),
        ("GET", "/attachments", list_attachments),
        ("POST", "/attachments", create_attachment),
        ("GET", "/goals", list_goals),
        ("GET", "/goals/{goal_gid}", get_goal),
        ("GET", "/goal_relationships", list_goal_relationships),
        ("GET", "/goals/{goal_gid}/parentGoals", parent_goals),
        ("GET", "/status_updates", list_status_updates),
        ("POST", "/status_updates", create_status_update),
        ("POST", "/webhooks", create_webhook),
        ("GET", "/webhooks", list_webhooks),
        ("GET", "/webhooks/{webhook_gid}", get_webhook),
        ("DELETE", "/webhooks/{webhook_gid}", delete_webhook),
        ("GET", "/projects/{project_gid}", get_project),
        ("GET", "/events", get_events),
    ]
]
_UNLOCKED = {create_webhook}


def _route(method: str, path: str) -> tuple[Callable[[Call], Result], dict[str, str]]:
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path) if route_method == method else None
        if match:
            return handler, match.groupdict()
    raise ApiError(404, "No matching route for request")


def dispatch(
    fake: "FakeAsana",
    method: str,
    path: str,
    query: dict[str, str],
    headers: Mapping[str, str],
    body: bytes,
    user_gid: str,
) -> Result:
    handler, params = _route(method, path)
    for name, value in params.items():
        if not (value.isdigit() or (name == "user_gid" and (value == "me" or "@" in value))):
            raise ApiError(400, f"{name.removesuffix('_gid')}: Not a Long: {value}")
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        data = parse_form(content_type, body)
    else:
        data = json.loads(body)["data"] if body else {}
    call = Call(fake, user_gid, path, params, query, data)
    if handler in _UNLOCKED:
        return handler(call)
    with fake._lock:
        return handler(call)
