"""The fake Asana's demo workspace and its control actions: what a person would do in Asana
(tag a task, comment, move a goal's progress) while pilotsite watches.

Only the fake has these: the fake server answers them under `/_fake/` (never under the API
prefix), and `python -m integrations.asana.fake.server tag-task …` calls them over HTTP. Task
changes go through the fake's own API (as the seeded user), so they leave the same stories
Asana would; a goal's progress has no API call in the contract, so it is changed in place.
"""

import json
from collections.abc import Callable
from typing import Any

from integrations.asana.fake.api import FakeAsana
from integrations.asana.fake.validation import API_PREFIX

CONTROL_PREFIX = "/_fake/"

PEOPLE = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Alan Turing", "alan@example.com"),
    ("Katherine Johnson", "katherine@example.com"),
]


class ControlError(Exception):
    """A control request that cannot be done; the message says what to use instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def seed_demo(fake: FakeAsana) -> dict[str, str]:
    """A small, realistic workspace: people with emails, three projects, tasks (none tagged
    `pilot` yet: tagging one is the tour's first step; one finished earlier), and goals with
    metrics and key results owned by the people; the `pilot` tag exists. Returns {person's
    email: user GID}."""
    fake.seed()
    ws = fake.workspace_gid
    fake._objects[ws]["name"] = "Acme (demo)"
    people = {email: fake.add_user(name, email, [ws]) for name, email in PEOPLE}
    ada, grace, alan, katherine = people.values()

    web = fake.add_project(ws, "Website relaunch")
    app = fake.add_project(ws, "Mobile app")
    ops = fake.add_project(ws, "Operations")
    for name, notes, project, tags in (
        ("Fix the login redirect loop", "Users land on /login again after signing in.", web, []),
        ("Write the pricing page copy", "Three plans; keep it under 200 words.", web, ["docs"]),
        ("Add dark mode to settings", "Follow the system setting by default.", app, []),
        (
            "Crash on Android 14 when offline",
            "Steps: airplane mode, open the app.",
            app,
            ["urgent"],
        ),
        ("Rotate the database credentials", "Quarterly rotation.", ops, ["high"]),
        ("Update the on-call handbook", "Add the new escalation policy.", ops, ["docs"]),
    ):
        fake.add_task(ws, name, notes=notes, projects=[project], tags=tags)
    fake.add_task(
        ws, "Set up the pilot", notes="Done before the demo.", projects=[ops], completed=True
    )
    # Setting up the pilot made its tag (on no task yet): a workspace without it is a
    # connection error ("pilot tag 'pilot' not found"), not the demo's starting point.
    fake.add_tag(ws, "pilot")

    percent = {"unit": "percentage", "initial_number_value": 0, "target_number_value": 1}
    revenue = fake.add_goal(
        ws,
        "Grow subscription revenue",
        owner_gid=ada,
        status="green",
        html_notes="<body>New plans and the relaunched website.</body>",
        due_on="2026-12-31",
        metric={
            "unit": "currency",
            "currency_code": "EUR",
            "initial_number_value": 0,
            "target_number_value": 120000,
            "current_number_value": 48000,
        },
    )
    fake.add_goal(
        ws,
        "Launch the new pricing page",
        owner_gid=ada,
        status="yellow",
        parent_gid=revenue,
        metric={**percent, "current_number_value": 0.6},
    )
    fake.add_goal(
        ws,
        "Sign 20 new teams",
        owner_gid=grace,
        status="green",
        parent_gid=revenue,
        metric={"target_number_value": 20, "current_number_value": 7},
    )
    quality = fake.add_goal(
        ws,
        "Ship a crash-free mobile app",
        owner_gid=grace,
        status="red",
        due_on="2026-09-30",
        metric={**percent, "current_number_value": 0.25},
    )
    fake.add_goal(
        ws,
        "Crash-free sessions above 99.5%",
        owner_gid=alan,
        status="yellow",
        parent_gid=quality,
        metric={**percent, "current_number_value": 0.4},
    )
    fake.add_goal(
        ws,
        "Keep on-call pages under 5 a week",
        owner_gid=katherine,
        status="green",
        metric={"initial_number_value": 20, "target_number_value": 5, "current_number_value": 8},
    )
    return people


def _api(fake: FakeAsana, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    """One request to the fake's own API as the seeded user; ControlError if refused."""
    headers = {"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"}
    body = json.dumps({"data": data}).encode()
    status, _, payload = fake.handle(method, API_PREFIX + path, {}, headers, body)
    if status >= 400:
        raise ControlError(status, json.loads(payload)["errors"][0]["message"])
    return json.loads(payload)


def _find(fake: FakeAsana, resource_type: str, wanted: str) -> dict[str, Any]:
    """A task or goal by GID, exact name, or the one name containing `wanted` (any case)."""
    records = fake._records(resource_type)
    for record in records:
        if wanted in (record["gid"], record["name"]):
            return record
    found = [r for r in records if wanted.lower() in r["name"].lower()]
    if len(found) == 1:
        return found[0]
    names = ", ".join(sorted(repr(r["name"]) for r in (found or records)))
    problem = "matches several" if found else "matches none"
    raise ControlError(404, f"{resource_type} {wanted!r} {problem}; use one of: {names}")


def tag_task(fake: FakeAsana, task: str, tag: str = "pilot", by: str = "") -> dict[str, Any]:
    """Add `tag` (a name; created when missing) to a task, as a person would in Asana: the
    seeded user through the API, or `by` (a user's GID, email or name) in Asana's web app.
    Either way the task gets the `added_to_tag` story naming who did it. A completed task
    is tagged too, with a `note` saying pilotsite will not pick it up."""
    record = _find(fake, "task", task)
    tag_gid = fake._tag_gid(record["workspace"], tag)
    if by:
        fake.person_changes_task(record["gid"], _person(fake, by), add=[tag_gid])
    else:
        _api(fake, "POST", f"/tasks/{record['gid']}/addTag", {"tag": tag_gid})
    answer = {"task": record["gid"], "name": record["name"], "tags": fake.tag_names(record["gid"])}
    if record.get("completed"):
        answer["note"] = (
            f"{record['name']!r} is completed: pilotsite picks up only incomplete tasks, "
            "so tag another one."
        )
    return answer


def _person(fake: FakeAsana, wanted: str) -> str:
    """A user's GID by GID, email (any case) or exact name."""
    for user in fake._records("user"):
        if wanted in (user["gid"], user["name"]) or wanted.lower() == user["email"].lower():
            return user["gid"]
    names = ", ".join(sorted(repr(u["email"]) for u in fake._records("user")))
    raise ControlError(404, f"user {wanted!r} matches none; use one of: {names}")


def comment(fake: FakeAsana, task: str, text: str, by: str = "") -> dict[str, Any]:
    """Comment on a task as the seeded user through the API (the token's own user, whose
    comments pilotsite never takes as a reply), or as `by` (a user's GID, email or name) in
    Asana's web app: a person, who can answer the executor's question."""
    record = _find(fake, "task", task)
    if by:
        story_gid = fake.person_comments(record["gid"], _person(fake, by), text)
    else:
        story_gid = _api(fake, "POST", f"/tasks/{record['gid']}/stories", {"text": text})["data"][
            "gid"
        ]
    return {"task": record["gid"], "name": record["name"], "story": story_gid}


def goal_progress(fake: FakeAsana, goal: str, current: float) -> dict[str, Any]:
    """Set a goal's metric to `current` (in the metric's unit: a fraction for percentages)."""
    record = _find(fake, "goal", goal)
    metric = record.get("metric")
    if not metric:
        raise ControlError(400, f"goal {record['name']!r} has no metric to move")
    kept = {k: v for k, v in metric.items() if k not in ("gid", "resource_type")}
    kept.update(current_number_value=current, current_display_value=str(current))
    fake.update_goal(record["gid"], metric=kept)
    return {"goal": record["gid"], "name": record["name"], "current": current}


def state(fake: FakeAsana) -> dict[str, Any]:
    """What the demo holds: the workspace, token, people, tasks with tags and comments
    (author's name and text, oldest first), goals' progress."""
    return {
        "workspace": fake.workspace_gid,
        "token": fake.token,
        "people": [
            {"gid": u["gid"], "name": u["name"], "email": u["email"]} for u in fake._records("user")
        ],
        "tasks": [
            {
                "gid": t["gid"],
                "name": t["name"],
                "completed": t["completed"],
                "tags": fake.tag_names(t["gid"]),
                "comments": [
                    {"by": c["created_by"]["name"], "text": c["text"]}
                    for c in fake.comments(t["gid"])
                ],
            }
            for t in fake._records("task")
        ],
        "goals": [
            {
                "gid": g["gid"],
                "name": g["name"],
                "status": g.get("status"),
                "current": (g.get("metric") or {}).get("current_number_value"),
                "target": (g.get("metric") or {}).get("target_number_value"),
            }
            for g in fake._records("goal")
        ],
    }


ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "tag-task": tag_task,
    "comment": comment,
    "goal-progress": goal_progress,
}


def handle(fake: FakeAsana, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Answer `GET /_fake/state` or `POST /_fake/<action>` (a JSON object of the action's
    keyword arguments). Returns (HTTP status, JSON body); errors are {"error": message}."""
    action = path.removeprefix(CONTROL_PREFIX).strip("/")
    try:
        if method == "GET" and action == "state":
            return 200, state(fake)
        if method != "POST" or action not in ACTIONS:
            known = ", ".join(["GET state", *(f"POST {a}" for a in ACTIONS)])
            raise ControlError(404, f"no control {method} {action!r}; there are: {known}")
        try:
            arguments = json.loads(body or b"{}")
            return 200, ACTIONS[action](fake, **arguments)
        except (ValueError, TypeError) as exc:
            raise ControlError(400, f"{action}: {exc}") from exc
    except ControlError as exc:
        return exc.status, {"error": str(exc)}
