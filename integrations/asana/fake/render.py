"""How the fake Asana shows its state: full records, opt_fields projection, pagination, errors.

State records hold references as GIDs; `full()` expands them into the nested compact objects
Asana returns, and `project()` trims a full record to what the client asked for.
"""

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)
PHRASE = "6 sad squid snuggle softly"  # Asana attaches a phrase like this to server errors
MAX_UNPAGINATED = 100  # above this, a list requested without `limit` is refused, like Asana

# Fields returned when a request has no opt_fields (besides gid and resource_type). Asana returns
# more on single-object reads; the fake is stricter so clients always ask for what they read.
COMPACT_FIELDS: dict[str, list[str]] = {
    "story": ["created_at", "created_by.name", "resource_subtype", "text"],
    "attachment": ["name", "resource_subtype"],
    "webhook": ["active", "resource.name", "target"],
    "goal": ["name", "owner.name"],
    "goal_relationship": ["resource_subtype", "supporting_resource.name", "contribution_weight"],
    "status_update": ["resource_subtype", "title"],
}
DEFAULT_COMPACT = ["name"]


class ApiError(Exception):
    """An error answer in Asana's envelope."""

    def __init__(self, status: int, message: str, *, phrase: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.phrase = phrase

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "help": HELP}
        if self.phrase:
            error["phrase"] = PHRASE
        return {"errors": [error]}


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def permalink(gid: str) -> str:
    return f"https://app.asana.com/0/0/{gid}"


def full(objects: Mapping[str, dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """The record as Asana would return it with every field requested."""

    def compact(gid: str | None) -> dict[str, Any] | None:
        if gid is None or gid not in objects:
            return None
        ref = objects[gid]
        out = {"gid": gid, "resource_type": ref["resource_type"], "name": ref.get("name", "")}
        if ref["resource_type"] == "task":
            out["resource_subtype"] = ref["resource_subtype"]
        return out

    expand = _EXPANDERS.get(record["resource_type"], lambda r, c: {})
    public = {k: v for k, v in record.items() if not k.startswith("_")}
    return public | expand(record, compact)


def _task(r: dict[str, Any], c: Callable) -> dict[str, Any]:
    sections = r.get("_sections", {})
    return {
        "workspace": c(r["workspace"]),
        "tags": [c(g) for g in r["tags"]],
        "projects": [c(g) for g in r["projects"]],
        # TaskBase.memberships: "Array of projects this task is associated with and the
        # section it is in".
        "memberships": [{"project": c(g), "section": c(sections.get(g))} for g in r["projects"]],
        "created_by": c(r["created_by"]),
        "assignee": c(r["assignee"]),
        "parent": c(r["parent"]),
    }


def _goal(r: dict[str, Any], c: Callable) -> dict[str, Any]:
    return {
        "workspace": c(r["workspace"]),
        "owner": c(r["owner"]),
        "current_status_update": c(r.get("current_status_update")),
    }


_EXPANDERS: dict[str, Callable[[dict[str, Any], Callable], dict[str, Any]]] = {
    "user": lambda r, c: {"workspaces": [c(g) for g in r["workspaces"]]},
    "tag": lambda r, c: {"workspace": c(r["workspace"])},
    "project": lambda r, c: {"workspace": c(r["workspace"])},
    "task": _task,
    "story": lambda r, c: {
        "created_by": c(r["created_by"]),
        "target": c(r["target"]),
        **({"tag": c(r["tag"])} if "tag" in r else {}),
    },
    "attachment": lambda r, c: {"parent": c(r["parent"])},
    "goal": _goal,
    "goal_relationship": lambda r, c: {
        "supported_goal": c(r["supported_goal"]),
        "supporting_resource": c(r["supporting_resource"]),
    },
    "webhook": lambda r, c: {"resource": c(r["resource"])},
    "status_update": lambda r, c: {
        "parent": c(r["parent"]),
        "author": c(r["author"]),
        "created_by": c(r["created_by"]),
    },
}


def project(record: dict[str, Any], opt_fields: str | None) -> dict[str, Any]:
    """Keep gid, resource_type and the requested (possibly dotted) fields."""
    if opt_fields is None:
        fields = COMPACT_FIELDS.get(record.get("resource_type", ""), DEFAULT_COMPACT)
    else:
        fields = [f for f in opt_fields.split(",") if f]
    tree: dict[str, dict] = {}
    for field in fields:
        node = tree
        for part in field.split("."):
            node = node.setdefault(part, {})
    return _pick(record, tree)


def _pick(value: Any, tree: dict[str, dict]) -> Any:
    if isinstance(value, list):
        return [_pick(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: value[key] for key in ("gid", "resource_type") if key in value}
    for key, subtree in tree.items():
        if key in value:
            # A nested object asked for without sub-fields comes back as {gid, resource_type}.
            out[key] = _pick(value[key], subtree)
    return out


def paginate(
    items: list[dict[str, Any]],
    query: Mapping[str, str],
    path: str,
    base_url: str,
    out: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
) -> dict[str, Any]:
    """One page of `items` with Asana's next_page, or everything; `out` renders each item
    of the page (only those)."""
    if "limit" not in query:
        if len(items) > MAX_UNPAGINATED:
            raise ApiError(
                400,
                "The result is too large. You should use pagination "
                "(may require specifying a workspace)!",
            )
        return {"data": [out(item) for item in items], "next_page": None}
    limit = int(query["limit"])  # the contract already checked 1..100
    start = _decode_offset(query["offset"], path) if "offset" in query else 0
    page = [out(item) for item in items[start : start + limit]]
    next_page = None
    if start + limit < len(items):
        token = _encode_offset(path, start + limit)
        params = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "offset")
        rel = f"{path}?{params}&offset={token}"
        next_page = {"offset": token, "path": rel, "uri": base_url + rel}
    return {"data": page, "next_page": next_page}


def _encode_offset(path: str, start: int) -> str:
    raw = json.dumps([path, start]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_offset(token: str, path: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        token_path, start = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ApiError(400, "offset: Your pagination token is invalid.") from exc
    if token_path != path or not isinstance(start, int) or start < 0:
        raise ApiError(400, "offset: Your pagination token is for a different request.")
    return start


def runaway_next_page(
    payload: dict[str, Any], query: Mapping[str, str], path: str, base_url: str, *, endless: bool
) -> dict[str, Any]:
    """A page whose `next_page` misbehaves: it points back at the page just read, or (endless)
    at one more page after it however far the list really goes."""
    start = _decode_offset(query["offset"], path) if "offset" in query else 0
    token = _encode_offset(path, start + int(query["limit"]) if endless else start)
    params = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "offset")
    rel = f"{path}?{params}&offset={token}"
    return {**payload, "next_page": {"offset": token, "path": rel, "uri": base_url + rel}}
