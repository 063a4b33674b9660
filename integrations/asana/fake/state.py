"""The fake Asana's state: its objects, and the Python API tests use to build and inspect it.

Objects live in one dict keyed by GID (GIDs are unique across types, as in Asana) and hold
references as GIDs; fake_render.full() expands them the way Asana returns them. Keys that start
with "_" are internal and never rendered.
"""

import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape, unescape
from typing import Any

from integrations.asana.fake.render import full, iso, now_iso, permalink

_GOAL_FIELDS = {
    "name",
    "owner",
    "status",
    "html_notes",
    "due_on",
    "start_on",
    "metric",
    "time_period",
}

# asana_oas.yaml, GoalResponse.status (nullable): "When the goal is open, its status can be
# `green`, `yellow`, and `red` [...]. When the goal is closed, the value can be `missed`,
# `achieved`, `partial`, or `dropped`." Nothing else is ever sent, so the fake refuses to
# build a goal with any other value (status-update words such as `on_track` included).
GOAL_STATUSES = frozenset({"green", "yellow", "red", "achieved", "partial", "missed", "dropped"})


def plain_text(html: str) -> str:
    """Roughly what Asana puts in `notes` for given `html_notes`."""
    return unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", html)))


class FakeAsanaState:
    def __init__(self) -> None:
        # Reentrant: request handlers hold it and call the builders below, which take it too.
        self._lock = threading.RLock()
        self._objects: dict[str, dict[str, Any]] = {}
        # Indexes, so a list over 50,000 tasks costs what Asana's would, not a scan of every
        # object: records by type, and the tasks ever given each tag through the builders or
        # the API (re-checked against the task when read, so a tag removed is never listed).
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {}
        self._tagged: dict[str, dict[str, None]] = {}
        # Counts task writes made through the builders and the API, so a tag's list is
        # built once per listing (its pages) rather than once per page.
        self._task_writes = 0
        self._tag_lists: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        # Asana's search index (GET /workspaces/{workspace_gid}/tasks/search): what search
        # sees of each task, and changes not indexed yet. The spec's "Eventual consistency":
        # "This process can take between 10 and 60 seconds"; `search_index_delay` (seconds)
        # is that lag here (0: search sees every change at once), applied when search reads.
        self.search_index_delay = 0.0
        self._search_index: dict[str, dict[str, Any]] = {}
        self._search_pending: list[tuple[float, str, dict[str, Any] | None]] = []
        self._tokens: dict[str, str] = {}
        self._next_gid = 1_200_000_000_000_001
        # Set by seed(): the default workspace, its user and that user's token.
        self.workspace_gid = ""
        self.user_gid = ""
        self.token = ""
        # The `pilot` tag's gid once a test fixture has added it.
        self.pilot_tag_gid = ""

    # ---- building state -------------------------------------------------------------------

    def _new(self, resource_type: str, gid: str | None = None, **fields: Any) -> str:
        with self._lock:
            if gid is None:
                gid = str(self._next_gid)
                self._next_gid += 1
            record = {"gid": gid, "resource_type": resource_type, **fields}
            self._objects[gid] = record
            self._by_type.setdefault(resource_type, {})[gid] = record
            return gid

    def _delete(self, gid: str) -> None:
        with self._lock:
            record = self._objects.pop(gid)
            self._by_type.get(record["resource_type"], {}).pop(gid, None)
            if record["resource_type"] == "task":
                self._index_for_search(gid)

    def _note_tagged(self, task_gid: str, tag_gid: str) -> None:
        """Every builder and route that adds a tag to a task calls this (and
        `_index_for_search`): the tag's task list is read from this index."""
        with self._lock:
            tagged = self._tagged.setdefault(tag_gid, {})
            if task_gid in tagged:
                return
            if tagged and int(task_gid) < int(next(reversed(tagged))):
                # An older task tagged later: keep the index in GID order (rarely needed:
                # tasks are mostly tagged when created, in GID order).
                tagged[task_gid] = None
                self._tagged[tag_gid] = dict.fromkeys(sorted(tagged, key=int))
            else:
                tagged[task_gid] = None

    def tasks_with_tag(self, tag_gid: str) -> list[dict[str, Any]]:
        """The tasks carrying the tag now, oldest first (by GID, which grows with creation)."""
        with self._lock:
            cached = self._tag_lists.get(tag_gid)
            if cached is not None and cached[0] == self._task_writes:
                return cached[1]
            objects = self._objects
            found = [
                record
                for gid in self._tagged.get(tag_gid, {})
                if (record := objects.get(gid)) is not None and tag_gid in record["tags"]
            ]
            self._tag_lists[tag_gid] = (self._task_writes, found)
            return found

    # ---- the search index -----------------------------------------------------------------

    def _index_for_search(self, task_gid: str) -> None:
        """Queue what search will see of the task (None: gone) after `search_index_delay`.

        Builders and API writes call this; a test that edits `_objects` directly is not
        seen by search (as if the change were never indexed)."""
        with self._lock:
            self._task_writes += 1
            record = self._objects.get(task_gid)
            seen = (
                None
                if record is None
                else {
                    "workspace": record["workspace"],
                    "tags": frozenset(record["tags"]),
                    "completed": record["completed"],
                    "created_at": record["created_at"],
                    "modified_at": record["modified_at"],
                }
            )
            self._search_pending.append((time.monotonic(), task_gid, seen))

    def search_view(self) -> dict[str, dict[str, Any]]:
        """The search index as of now: every queued change older than `search_index_delay`,
        applied in the order made."""
        with self._lock:
            indexed_before = time.monotonic() - self.search_index_delay
            waiting: list[tuple[float, str, dict[str, Any] | None]] = []
            for changed, gid, seen in self._search_pending:
                if waiting or changed > indexed_before:
                    waiting.append((changed, gid, seen))
                elif seen is None:
                    self._search_index.pop(gid, None)
                else:
                    self._search_index[gid] = seen
            self._search_pending = waiting
            return self._search_index

    def set_premium(self, workspace_gid: str, premium: bool) -> None:
        """Asana's premium plans (Starter and up) offer search; a free workspace gets 402."""
        with self._lock:
            self._objects[workspace_gid]["_premium"] = premium

    def seed(self) -> None:
        """One workspace, one user in it and a token for that user."""
        self.workspace_gid = self.add_workspace("Pilot Workspace")
        self.user_gid = self.add_user("Pilot Admin", "admin@example.com", [self.workspace_gid])
        # Shaped like a real PAT (so redaction applies) and unique, so per-token state in the
        # client (its request budget) is not shared between tests.
        self.token = f"2/{self.user_gid}/{self.workspace_gid}:{secrets.token_hex(16)}"
        self.add_token(self.token, self.user_gid)

    def add_workspace(self, name: str, gid: str | None = None) -> str:
        return self._new(
            "workspace", gid, name=name, is_organization=True, email_domains=[], _premium=True
        )

    def add_user(
        self, name: str, email: str, workspaces: Iterable[str] = (), gid: str | None = None
    ) -> str:
        return self._new(
            "user", gid, name=name, email=email, workspaces=list(workspaces), photo=None
        )

    def join_workspace(self, user_gid: str, workspace_gid: str) -> None:
        """The user becomes a member of another workspace (a token sees every workspace of
        its user, so one token can reach tasks of several workspaces)."""
        with self._lock:
            self._objects[user_gid]["workspaces"].append(workspace_gid)

    def add_token(self, token: str, user_gid: str) -> None:
        with self._lock:
            self._tokens[token] = user_gid

    def add_tag(
        self, workspace_gid: str, name: str, *, created_at: datetime | str | None = None
    ) -> str:
        """A new tag, even when one of that name exists: Asana's tag names are not unique
        (the spec's TagCompact.name requires no uniqueness)."""
        return self._new(
            "tag",
            workspace=workspace_gid,
            name=name,
            color=None,
            notes="",
            created_at=iso(created_at) if created_at else now_iso(),
        )

    def add_project(self, workspace_gid: str, name: str) -> str:
        return self._new(
            "project", workspace=workspace_gid, name=name, archived=False, color=None, notes=""
        )

    def add_section(self, project_gid: str, name: str) -> str:
        """A section of a project (SectionCompact: gid, name)."""
        return self._new("section", name=name, project=project_gid)

    def add_task(
        self,
        workspace_gid: str,
        name: str,
        *,
        notes: str = "",
        html_notes: str | None = None,
        tags: Iterable[str] = (),
        projects: Iterable[str] = (),
        completed: bool = False,
        created_at: datetime | str | None = None,
        resource_subtype: str = "default_task",
        approval_status: str | None = None,
        parent: str | None = None,
        created_by: str | None = None,
    ) -> str:
        """Tags are tag GIDs or names; unknown names become new tags in the workspace.
        `parent` makes it a subtask of that task (counted in the parent's `num_subtasks`,
        listed by `GET /tasks/{task_gid}/subtasks`); `created_by` is its creator's user GID
        (the seeded user unless given).

        `resource_subtype` is default_task, milestone or approval (TaskCompact in the spec). An
        approval carries `approval_status` (pending unless given), kept in sync with
        `completed` as the spec's TaskBase.approval_status says: pending is not completed,
        approved / rejected / changes_requested are."""
        if resource_subtype == "approval":
            approval_status = approval_status or ("approved" if completed else "pending")
            completed = approval_status != "pending"
        elif approval_status is not None:
            raise ValueError("only an approval task has an approval_status")
        with self._lock:
            created = iso(created_at) if created_at else now_iso()
            gid = self._new(
                "task",
                name=name,
                notes=notes or plain_text(html_notes or ""),
                html_notes=html_notes
                if html_notes is not None
                else f"<body>{escape(notes)}</body>",
                completed=completed,
                completed_at=created if completed else None,
                created_at=created,
                modified_at=created,
                resource_subtype=resource_subtype,
                assignee=None,
                due_on=None,
                due_at=None,
                start_on=None,
                parent=parent,
                num_subtasks=0,
                custom_fields=[],
                followers=[],
                workspace=workspace_gid,
                tags=[self._tag_gid(workspace_gid, tag) for tag in tags],
                projects=list(projects),
                created_by=created_by or self.user_gid or None,
            )
            self._objects[gid]["permalink_url"] = permalink(gid)
            if approval_status is not None:
                self._objects[gid]["approval_status"] = approval_status
            for tag_gid in self._objects[gid]["tags"]:
                self._note_tagged(gid, tag_gid)
            if parent is not None:
                self._objects[parent]["num_subtasks"] += 1
            self._index_for_search(gid)
            return gid

    def set_task(
        self,
        task_gid: str,
        *,
        assignee: str | None = None,
        due_on: str | None = None,
        due_at: str | None = None,
        sections: Mapping[str, str] | None = None,
    ) -> None:
        """Change a task as someone in Asana would: its `assignee` (a user GID), due date
        (`due_on`, YYYY-MM-DD) or due time (`due_at`, ISO 8601; Asana then sets `due_on` to
        its date), and the section it is in per project (`{project_gid: section_gid}`)."""
        with self._lock:
            task = self._objects[task_gid]
            if assignee is not None:
                task["assignee"] = assignee
            if due_at is not None:
                task["due_at"], task["due_on"] = due_at, due_at[:10]
            elif due_on is not None:
                task["due_on"] = due_on
            for project_gid, section_gid in (sections or {}).items():
                if project_gid not in task["projects"]:
                    task["projects"].append(project_gid)
                task.setdefault("_sections", {})[project_gid] = section_gid
            task["modified_at"] = now_iso()
            self._index_for_search(task_gid)

    def set_custom_field(
        self, task_gid: str, name: str, value: str | float | None, *, subtype: str = "text"
    ) -> None:
        """Give a task a value of the workspace's custom field `name` (created on first use
        with `subtype`: text, number or enum). The task's `custom_fields` entry carries the
        typed value (`text_value`, `number_value`, `enum_value`) and `display_value`, the
        string CustomFieldBase.display_value describes (null when there is no value)."""
        with self._lock:
            task = self._objects[task_gid]
            found = self._records("custom_field", name=name, workspace=task["workspace"])
            field_gid = (
                found[0]["gid"]
                if found
                else self._new(
                    "custom_field",
                    name=name,
                    workspace=task["workspace"],
                    resource_subtype=subtype,
                    type=subtype,
                )
            )
            subtype = self._objects[field_gid]["resource_subtype"]
            entry: dict[str, Any] = {
                "gid": field_gid,
                "resource_type": "custom_field",
                "name": name,
                "resource_subtype": subtype,
                "type": subtype,
                "display_value": None
                if value is None
                else f"{value:g}"
                if isinstance(value, float | int)
                else str(value),
            }
            if subtype == "number":
                entry["number_value"] = value
            elif subtype == "enum":
                entry["enum_value"] = (
                    None
                    if value is None
                    else {
                        "gid": self._new("enum_option", name=str(value)),
                        "resource_type": "enum_option",
                        "name": str(value),
                        "enabled": True,
                        "color": "none",
                    }
                )
            else:
                entry["text_value"] = value
            task["custom_fields"] = [f for f in task["custom_fields"] if f["gid"] != field_gid] + [
                entry
            ]
            task["modified_at"] = now_iso()

    def add_attachment(
        self, task_gid: str, name: str, *, url: str | None = None, size: int = 1024
    ) -> str:
        """A file someone attached to a task in Asana (`host` asana; `view_url` and
        `permanent_url` link to it in Asana, `download_url` is a temporary link), or, with
        `url`, a link attached as an external attachment."""
        link = url or f"https://app.asana.com/app/asana/-/get_asset?asset_id={self._next_gid}"
        return self._new(
            "attachment",
            resource_subtype="external" if url else "asana",
            name=name,
            host="external" if url else "asana",
            view_url=link,
            permanent_url=link,
            download_url=None if url else f"https://asana-user-private.s3.amazonaws.com/{name}",
            size=None if url else size,
            created_at=now_iso(),
            parent=task_gid,
            connected_to_app=False,
        )

    def tag_task(self, task_gid: str, tag_gid: str) -> None:
        """Someone adds a tag to a task in Asana (no API request is recorded; no story)."""
        with self._lock:
            task = self._objects[task_gid]
            if tag_gid not in task["tags"]:
                task["tags"].append(tag_gid)
                task["modified_at"] = now_iso()
                self._note_tagged(task_gid, tag_gid)
                self._index_for_search(task_gid)

    def _tag_gid(self, workspace_gid: str, tag: str) -> str:
        if self._objects.get(tag, {}).get("resource_type") == "tag":
            return tag
        for record in self._records("tag", name=tag, workspace=workspace_gid):
            return record["gid"]
        return self.add_tag(workspace_gid, tag)

    def person_changes_task(
        self,
        task_gid: str,
        user_gid: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        completed: bool | None = None,
    ) -> None:
        """A person (not the token's user) changes a task in Asana's web app: tags (GIDs or
        names) added or removed, completed. Each change leaves the system story Asana writes
        (StoryCompact.resource_subtype `added_to_tag`, `removed_from_tag`, `marked_complete`)
        with that person as `created_by`."""
        with self._lock:
            task = self._objects[task_gid]
            changes: list[tuple[str, str, str | None]] = []
            for tag in add:
                gid = self._tag_gid(task["workspace"], tag)
                if gid not in task["tags"]:
                    task["tags"].append(gid)
                    self._note_tagged(task_gid, gid)
                    changes.append(("added_to_tag", f"added to {self._objects[gid]['name']}", gid))
            for tag in remove:
                gid = self._tag_gid(task["workspace"], tag)
                if gid in task["tags"]:
                    task["tags"].remove(gid)
                    changes.append(
                        ("removed_from_tag", f"removed from {self._objects[gid]['name']}", gid)
                    )
            if completed is not None and completed != task["completed"]:
                task["completed"] = completed
                task["completed_at"] = now_iso() if completed else None
                subtype = "marked_complete" if completed else "marked_incomplete"
                changes.append((subtype, "completed this task", None))
            for subtype, text, tag_gid in changes:
                self.add_story(task_gid, user_gid, subtype, text, tag_gid=tag_gid)
            task["modified_at"] = now_iso()
            self._index_for_search(task_gid)

    def add_story(
        self,
        task_gid: str,
        user_gid: str,
        subtype: str,
        text: str,
        *,
        html_text: str | None = None,
        tag_gid: str | None = None,
    ) -> str:
        """A story on a task by `user_gid`, as Asana writes it: `comment_added` is a comment
        (`type` comment, editable), anything else a system story. A tag story
        (`added_to_tag`, `removed_from_tag`) names its `tag`, as StoryResponse.tag does."""
        comment = subtype == "comment_added"
        story: dict[str, Any] = {
            "type": "comment" if comment else "system",
            "resource_subtype": subtype,
            "text": text,
            "html_text": html_text if html_text is not None else f"<body>{escape(text)}</body>",
            "created_at": now_iso(),
            "created_by": user_gid,
            "target": task_gid,
            "is_pinned": False,
            "is_edited": False,
            "is_editable": comment,
        }
        if tag_gid is not None:
            story["tag"] = tag_gid
        return self._new("story", **story)

    def person_comments(
        self, task_gid: str, user_gid: str, text: str = "", *, html_text: str | None = None
    ) -> str:
        """A person comments on a task in Asana's web app (plain `text`, or rich `html_text`
        whose plain text Asana derives); returns the story's GID."""
        if html_text is not None:
            text = plain_text(html_text)
        return self.add_story(task_gid, user_gid, "comment_added", text, html_text=html_text)

    def delete_task(self, gid: str) -> None:
        self._delete(gid)

    def add_goal(
        self,
        workspace_gid: str,
        name: str,
        *,
        owner_gid: str | None = None,
        status: str | None = None,
        html_notes: str = "",
        due_on: str | None = None,
        start_on: str | None = None,
        metric: Mapping[str, Any] | None = None,
        parent_gid: str | None = None,
        time_period: Mapping[str, Any] | None = None,
    ) -> str:
        """`metric` overrides a default number metric; `time_period` needs display_name, period,
        start_on and end_on; `parent_gid` makes the goal a sub-goal of that goal."""
        with self._lock:
            gid = self._new(
                "goal",
                name=name,
                workspace=workspace_gid,
                team=None,
                is_workspace_level=True,
                liked=False,
                num_likes=0,
                followers=[],
                current_status_update=None,
            )
            self.update_goal(
                gid,
                owner=owner_gid,
                status=status,
                html_notes=html_notes,
                due_on=due_on,
                start_on=start_on,
                metric=metric,
                time_period=time_period,
            )
            if parent_gid is not None:
                self._new(
                    "goal_relationship",
                    resource_subtype="subgoal",
                    supported_goal=parent_gid,
                    supporting_resource=gid,
                    contribution_weight=1,
                )
            return gid

    def update_goal(self, gid: str, **fields: Any) -> None:
        """Change a goal as someone in Asana would. Fields: name, owner (a user GID or None),
        status, html_notes, due_on, start_on, metric (dict or None), time_period (dict or None)."""
        with self._lock:
            goal = self._objects[gid]
            for key, value in fields.items():
                if key not in _GOAL_FIELDS:
                    raise TypeError(f"update_goal() got an unexpected field {key!r}")
                if key == "status" and value is not None and value not in GOAL_STATUSES:
                    raise ValueError(
                        f"Asana never sends goal status {value!r}: use one of "
                        f"{sorted(GOAL_STATUSES)} or None"
                    )
                if key == "html_notes":
                    value = value or "<body></body>"
                    goal["notes"] = plain_text(value)
                elif key == "metric" and value is not None:
                    value = self._metric(value)
                elif key == "time_period" and value is not None:
                    value = {
                        "gid": self._new("time_period"),
                        "resource_type": "time_period",
                        **value,
                    }
                goal[key] = value

    def delete_goal(self, gid: str) -> None:
        """Remove a goal and its links to parent and sub-goals."""
        with self._lock:
            self._delete(gid)
            for link in self._records("goal_relationship"):
                if gid in (link["supported_goal"], link["supporting_resource"]):
                    self._delete(link["gid"])

    def _metric(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        metric = {
            "gid": self._new("goal_metric"),
            "resource_type": "goal_metric",
            "resource_subtype": "number",
            "precision": 0,
            "unit": "none",
            "currency_code": None,
            "initial_number_value": 0,
            "target_number_value": 100,
            "current_number_value": 0,
            "progress_source": "manual",
            "is_custom_weight": False,
        } | dict(overrides)
        metric.setdefault("current_display_value", str(metric["current_number_value"]))
        return metric

    # ---- reading state --------------------------------------------------------------------

    def _records(self, resource_type: str, **where: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r
                for r in self._by_type.get(resource_type, {}).values()
                if all(r.get(k) == v for k, v in where.items())
            ]

    def _full(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return full(self._objects, record)

    def task(self, gid: str) -> dict[str, Any]:
        return self._full(self._objects[gid])

    def goal(self, gid: str) -> dict[str, Any]:
        return self._full(self._objects[gid])

    def status_updates(self, parent_gid: str) -> list[dict[str, Any]]:
        """The status updates posted on a goal, oldest first."""
        return [self._full(r) for r in self._records("status_update", parent=parent_gid)]

    def comments(self, task_gid: str) -> list[dict[str, Any]]:
        return [self._full(r) for r in self._records("story", target=task_gid, type="comment")]

    def stories(self, task_gid: str) -> list[dict[str, Any]]:
        """Every story on the task, oldest first."""
        return [self._full(r) for r in self._records("story", target=task_gid)]

    def attachments(self, task_gid: str) -> list[dict[str, Any]]:
        return [self._full(r) for r in self._records("attachment", parent=task_gid)]

    def tag_names(self, task_gid: str) -> list[str]:
        return [tag["name"] for tag in self.task(task_gid)["tags"]]

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook, with its handshake `secret` (which Asana never returns)."""
        return [self._full(r) | {"secret": r["_secret"]} for r in self._records("webhook")]

    def event(
        self,
        resource_gid: str,
        action: str = "changed",
        *,
        field: str | None = None,
        parent_gid: str | None = None,
    ) -> dict[str, Any]:
        """An event shaped like the ones Asana delivers (user, resource, parent, change).
        The resource may already be gone (a "deleted" event); it is then taken to be a task."""
        with self._lock:
            record = self._objects.get(resource_gid, {"gid": resource_gid, "resource_type": "task"})
            resource = {
                k: record[k] for k in ("gid", "resource_type", "resource_subtype") if k in record
            }
            parent = self._objects.get(parent_gid or "")
            return {
                "user": {"gid": self.user_gid, "resource_type": "user"} if self.user_gid else None,
                "created_at": now_iso(),
                "action": action,
                "resource": resource,
                "parent": {"gid": parent["gid"], "resource_type": parent["resource_type"]}
                if parent
                else None,
                "change": {"field": field, "action": "changed"} if field else None,
            }

    def set_webhook_inactive(self, gid: str) -> None:
        with self._lock:
            hook = self._objects[gid]
            hook["active"] = False
            hook["last_failure_at"] = now_iso()
            hook["last_failure_content"] = "Target did not respond with a 2xx status."

    def forget_webhook(self, gid: str) -> None:
        """Asana deleted the webhook on its side (e.g. after failing deliveries for 24 hours)."""
        self._delete(gid)
