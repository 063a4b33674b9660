"""Derive integrations/asana/fake/contract.json from Asana's official OpenAPI description.

The contract is the subset of Asana's API that pilotsite uses, small enough to commit and to
load in every test process. The fake Asana validates every request it receives against it, so a
client that drifts from the real API fails in tests instead of in production.

Usage: .venv/bin/python tools/derive_asana_contract.py [path/to/asana_oas.yaml]
Re-running on the same spec produces a byte-identical file (integrations/tests/test_contract.py
checks that the committed file is up to date).
"""

import copy
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "asana" / "asana_oas.yaml"
OUTPUT = ROOT / "integrations" / "asana" / "fake" / "contract.json"

# Every operation the product or the fake Asana uses. Adding a call to the client means adding
# it here and re-running the script.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("get", "/users/{user_gid}"),  # also serves "me": the spec has no /users/me path
    ("get", "/users"),
    ("get", "/workspaces"),
    ("get", "/workspaces/{workspace_gid}"),
    ("get", "/workspaces/{workspace_gid}/tags"),
    ("post", "/workspaces/{workspace_gid}/tags"),
    ("get", "/tags"),
    ("post", "/tags"),
    ("get", "/tags/{tag_gid}/tasks"),
    ("get", "/workspaces/{workspace_gid}/tasks/search"),
    ("get", "/tasks/{task_gid}"),
    ("put", "/tasks/{task_gid}"),
    ("post", "/tasks/{task_gid}/addTag"),
    ("post", "/tasks/{task_gid}/removeTag"),
    ("get", "/tasks/{task_gid}/subtasks"),
    ("get", "/tasks/{task_gid}/stories"),
    ("post", "/tasks/{task_gid}/stories"),
    ("put", "/stories/{story_gid}"),
    ("get", "/attachments"),
    ("post", "/attachments"),
    ("get", "/goals"),
    ("get", "/goals/{goal_gid}"),
    ("get", "/goal_relationships"),
    ("get", "/goals/{goal_gid}/parentGoals"),
    ("get", "/status_updates"),
    ("post", "/status_updates"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("get", "/webhooks/{webhook_gid}"),
    ("delete", "/webhooks/{webhook_gid}"),
    ("get", "/projects/{project_gid}"),
    ("get", "/events"),
)

# Documentation-only keys, dropped wherever they are OpenAPI keywords.
DROPPED_KEYS = {"description", "example", "examples", "summary", "externalDocs", "tags"}
# Keys whose values map names to objects; their own keys are names (a schema property called
# "description" or the path "/tags"), never keywords, so they are kept.
NAME_MAPS = {
    "properties",
    "paths",
    "schemas",
    "parameters",
    "responses",
    "requestBodies",
    "securitySchemes",
    "content",
    "headers",
    "encoding",
    "scopes",
}
# The product authenticates with a personal access token only; the OAuth scheme (and its long
# scope list) would only add bulk.
SECURITY_SCHEMES = ("personalAccessToken",)


def load_spec(path: Path) -> Mapping[str, Any]:
    # read_from_filename keeps response codes as strings; yaml.safe_load would turn them into ints.
    from openapi_spec_validator.readers import read_from_filename

    spec, _ = read_from_filename(str(path))
    return spec


def _strip(node: Any, in_name_map: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if not in_name_map and (key in DROPPED_KEYS or key.startswith("x-")):
            continue
        out[key] = _strip(value, in_name_map=not in_name_map and key in NAME_MAPS)
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
    for value in node.values():
        found |= _refs(value)
    return found


def _collect_components(spec: Mapping[str, Any], roots: Any) -> dict[str, dict[str, Any]]:
    """Components reachable from `roots`, following references transitively."""
    kept: dict[str, dict[str, Any]] = {}
    pending = sorted(_refs(roots))
    while pending:
        ref = pending.pop()
        section, name = ref.removeprefix("#/components/").split("/", 1)
        if name in kept.get(section, {}):
            continue
        component = _strip(spec["components"][section][name])
        kept.setdefault(section, {})[name] = component
        pending.extend(sorted(_refs(component)))
    return kept


def _allow_null(schema: dict[str, Any]) -> None:
    """Accept null where Asana sends it although the spec does not say so.

    Asana returns null for unset references (a task's assignee, a goal's owner, metric or
    time_period, an event's user and parent) and unset dates or timestamps (due_on, start_on,
    completed_at, a webhook's last_failure_at). OpenAPI 3.0 ignores keywords next to a $ref and
    openapi-schema-validator checks each allOf branch on its own, so a `nullable` beside the
    reference (which the spec sometimes has) is not enough: the referenced object schema itself
    must allow null. So every object schema, and every property named *_at / *_on or formatted as
    a date, is made nullable. The fake validates requests, where this looseness costs nothing.
    """
    if schema.get("type") == "object" or "allOf" in schema or "properties" in schema:
        schema["nullable"] = True
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            continue
        if name.endswith(("_at", "_on")) or prop.get("format") in ("date", "date-time"):
            prop["nullable"] = True
        _allow_null(prop)
    for branch in schema.get("allOf", []):
        if "$ref" not in branch:
            _allow_null(branch)
    if isinstance(schema.get("items"), dict) and "$ref" not in schema["items"]:
        _allow_null(schema["items"])


def _describe_responses(responses: dict[str, Any]) -> None:
    # OpenAPI requires a description on every response object (but not on references).
    for response in responses.values():
        if "$ref" not in response:
            response["description"] = ""


def derive(spec: Mapping[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        item = spec["paths"].get(path, {})
        if method not in item:
            raise SystemExit(f"{method.upper()} {path} is not in Asana's spec")
        entry = paths.setdefault(path, {})
        if "parameters" in item:
            entry["parameters"] = _strip(item["parameters"])
        entry[method] = operation = _strip(item[method])
        if "security" in operation:
            operation["security"] = [
                requirement
                for requirement in operation["security"]
                if set(requirement) <= set(SECURITY_SCHEMES)
            ]
        _describe_responses(operation["responses"])

    components = _collect_components(spec, paths)
    _describe_responses(components.get("responses", {}))
    components["securitySchemes"] = {
        name: _strip(spec["components"]["securitySchemes"][name]) for name in SECURITY_SCHEMES
    }
    for schema in components.get("schemas", {}).values():
        _allow_null(schema)

    return {
        "openapi": spec["openapi"],
        "info": {
            "title": "Asana API subset used by pilotsite",
            "version": spec["info"]["version"],
            "license": copy.deepcopy(spec["info"].get("license", {})),
        },
        "servers": [{"url": server["url"]} for server in spec["servers"]],
        "security": [{name: []} for name in SECURITY_SCHEMES],
        "paths": paths,
        "components": components,
    }


def render(contract: dict[str, Any]) -> str:
    return json.dumps(contract, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    spec_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    contract = derive(load_spec(spec_path))

    # Refuse to write something openapi-core could not load.
    from openapi_spec_validator import validate

    validate(contract)
    OUTPUT.write_text(render(contract), encoding="utf-8")
    operations = sum(
        len([k for k in item if k != "parameters"]) for item in contract["paths"].values()
    )
    print(
        f"wrote {OUTPUT.relative_to(ROOT)}: {operations} operations, "
        f"{len(contract['components'].get('schemas', {}))} schemas, {OUTPUT.stat().st_size} bytes"
    )


if __name__ == "__main__":
    main(sys.argv)
