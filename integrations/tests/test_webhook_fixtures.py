"""Inbound webhook shapes, pinned by recorded delivery bodies (`integrations/webhooks/fixtures/`,
one file per kind of delivery Asana sends) and one table: each body is checked against the
spec's `EventResponse` (as committed in contract.json), posted signed to the endpoint, and the
tasks its handling would re-read are compared with the table.

Asana's event shapes: https://developers.asana.com/docs/webhooks-guide (Events) and the
`EventResponse` schema of asana_oas.yaml. A task tagged in Asana arrives as both "task added
to tag" and "task changed, field tags"; a tag removed from a task as "tag removed, parent
task"; a heartbeat is an empty `events` list.
"""

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.asana.fake.validation import CONTRACT_PATH
from integrations.models import AsanaConnection, WebhookRegistration
from integrations.tests.webhook_support import queued
from integrations.webhooks import delivery
from integrations.webhooks.jobs import handle_delivery

FIXTURES = Path(delivery.__file__).with_name("fixtures")

# fixture: (task GIDs the handler re-reads, events ignored); None for a heartbeat, which
# queues nothing.
TABLE: dict[str, tuple[list[str], int] | None] = {
    "task_changed_tags": (["1205000000000101"], 0),
    "task_changed_other_field": ([], 1),
    "task_added_to_tag": (["1205000000000102"], 0),
    "tag_added_to_task": (["1205000000000103"], 0),
    "tag_removed_from_task": (["1205000000000104"], 0),
    "task_added_to_project": (["1205000000000106"], 0),
    "story_added": ([], 1),
    "task_deleted": ([], 1),
    "mixed_delivery": (["1205000000000102"], 1),
    "heartbeat": None,
}

_SCHEMAS = json.loads(CONTRACT_PATH.read_text())["components"]["schemas"]
# The example events of Asana's webhooks guide carry `resource_subtype` on resources and
# parents ("default_task", "comment_added"); the spec's AsanaNamedResource does not list it
# but does not forbid extra keys either.
DOCUMENTED_EXTRAS = {"resource_subtype"}


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema's properties, following `$ref` and `allOf` the way the contract writes them."""
    if "$ref" in schema:
        return _properties(_SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(_properties(part))
    return found


def _shape_problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Keys the schema does not name, and objects where it says string (or the reverse)."""
    if value is None:
        return []
    properties = _properties(schema)
    if not properties:
        wanted = schema.get("type")
        if wanted == "string" and not isinstance(value, str):
            return [f"{where} is not a string"]
        return []
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    problems = [
        f"{where}.{key} is not in the spec"
        for key in value
        if key not in properties and key not in DOCUMENTED_EXTRAS
    ]
    for key, child in value.items():
        if key in properties:
            problems += _shape_problems(child, properties[key], f"{where}.{key}")
    return problems


def _body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_fixture_is_in_the_table():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_recorded_delivery_matches_the_spec_and_is_handled_as_the_table_says(
    db, name, django_capture_on_commit_callbacks
):
    body = _body(name)
    for index, event in enumerate(body["events"]):
        assert (
            _shape_problems(
                event, {"$ref": "#/components/schemas/EventResponse"}, f"events[{index}]"
            )
            == []
        )
    # The recorded times are rewritten to now: deliveries older than the retention are
    # acknowledged and dropped as stale, which is not what this table is about.
    for event in body["events"]:
        event["created_at"] = timezone.now().isoformat()
    connection = AsanaConnection.objects.create(workspace_gid="1", access_token="t" * 20)
    registration = WebhookRegistration.objects.create(
        connection=connection,
        resource_gid="1204000000000001",
        target_url="https://pilot.example.com/webhooks/asana/x/",
        webhook_gid="1208000000000001",
        secret="s" * 64,
        state=WebhookRegistration.State.ACTIVE,
    )
    raw = json.dumps(body).encode()
    signature = hmac.new(registration.secret.encode(), raw, hashlib.sha256).hexdigest()

    # The request's transaction commits, and the job goes out then.
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            reverse("asana-webhook", args=[registration.hook_id]),
            raw,
            content_type="application/json",
            HTTP_X_HOOK_SIGNATURE=signature,
        )

    assert response.status_code == 200
    expected = TABLE[name]
    if expected is None:
        assert queued() == []
        registration.refresh_from_db()
        assert registration.last_contact_at is not None
        return
    [task] = queued()
    assert task["func"] == handle_delivery
    registration_id, events = task["args"]
    assert registration_id == registration.pk
    assert delivery.task_gids(events) == expected
