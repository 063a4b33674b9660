"""Audit rows as sentences for people: "admin connected Pilot Workspace (1201)." instead of
`connection.create`. The stored row is unchanged; this is only how it reads on screen."""

import re

from django.utils.html import strip_tags

from integrations.models import AuditLog

# action → what the actor did, written after the actor's name. Unknown actions fall back to
# the action code with its dots read as spaces.
VERBS: dict[str, str] = {
    "connection.create": "connected",
    "connection.update": "replaced the token of",
    "connection.test": "tested the connection to",
    "connection.settings": "changed the settings of",
    "mapping.create": "mapped",
    "mapping.automap": "mapped employees by email in",
    "employees.import": "imported",
    "asana.create_tag": "created a tag in Asana for",
    "asana.add_tag": "added a tag in Asana to",
    "asana.remove_tag": "removed a tag in Asana from",
    "asana.comment": "commented in Asana on",
    "asana.attach_link": "attached a link in Asana to",
    "asana.complete_task": "marked complete in Asana",
    "pipeline.retry": "asked to retry",
    "pipeline.release": "released",
    "pipeline.backlog_skipped": "skipped the existing tagged tasks of",
    "webhook.register": "asked Asana for a webhook on",
    "webhook.registered": "registered",
    "webhook.delete": "deleted",
    "webhook.health": "checked the webhooks of",
    "webhook.state": "saw a webhook change state:",
    "webhook.handshake": "answered the handshake of",
    "webhook.delivery": "received a delivery for",
    "webhook.handled": "handled a delivery for",
    "webhook.stale": "ignored a stale delivery for",
}
ADMIN = re.compile(r"^admin\.(?P<model>\w+)\.(?P<verb>add|change|delete)$")
ADMIN_VERBS = {"add": "added", "change": "changed", "delete": "deleted"}
OUTCOME_NOTE = {AuditLog.Outcome.ERROR: " It failed.", AuditLog.Outcome.WARNING: ""}
DETAIL_SHOWN = 300


def _plain(text: str) -> str:
    """Text that may hold Asana's rich text (html_text comments) as one line of plain text."""
    return " ".join(strip_tags(text).split())


def describe(entry: AuditLog, *, with_detail: bool = True, with_actor: bool = True) -> str:
    """One sentence for the row: who (`with_actor`) did what to which target, then
    (`with_detail`) the detail as plain text, at most DETAIL_SHOWN characters."""
    match = ADMIN.match(entry.action)
    if match:
        verb = f"{ADMIN_VERBS[match['verb']]} the {match['model']}"
    else:
        verb = VERBS.get(entry.action, entry.action.replace(".", " ").replace("_", " "))
    sentence = f"{entry.actor_label} {verb}" if with_actor else verb[:1].upper() + verb[1:]
    if entry.target:
        sentence += f" {_plain(entry.target)}"
    sentence = sentence.rstrip(":") + "."
    detail = _plain(entry.detail) if with_detail else ""
    if with_actor and detail.lower().startswith(sentence.rstrip(".").lower().split(" ", 1)[-1]):
        # The detail already is the sentence ("Imported people.csv: 2 created, …"): say it once.
        return f"{entry.actor_label} {detail[0].lower()}{detail[1:]}" + OUTCOME_NOTE.get(
            entry.outcome, ""
        )
    if detail and detail.rstrip(".") not in sentence:
        if len(detail) > DETAIL_SHOWN:
            detail = detail[: DETAIL_SHOWN - 1] + "…"
        sentence += f" {detail[0].upper()}{detail[1:]}"
        if not sentence.endswith((".", "…", "!", "?")):
            sentence += "."
    return sentence + (OUTCOME_NOTE.get(entry.outcome, "") if with_detail else "")
