"""Audit rows as sentences for people: "admin connected Pilot Workspace (1201)." instead of
`connection.create`. The stored row is unchanged; this is only how it reads on screen."""

import re

from django.utils.html import strip_tags

from integrations.audit.actions import ADMIN_VERB_DONE, Action, AdminVerb
from integrations.models import AuditLog

# action → what the actor did, written after the actor's name. Unknown actions fall back to
# the action code with its dots read as spaces.
VERBS: dict[str, str] = {
    Action.CONNECTION_CREATE: "connected",
    Action.CONNECTION_UPDATE: "replaced the token of",
    Action.CONNECTION_TEST: "tested the connection to",
    Action.CONNECTION_SETTINGS: "changed the settings of",
    Action.MAPPING_CREATE: "mapped",
    Action.MAPPING_AUTOMAP: "mapped employees by email in",
    Action.EMPLOYEES_IMPORT: "imported",
    Action.ASANA_CREATE_TAG: "created a tag in Asana for",
    Action.ASANA_ADD_TAG: "added a tag in Asana to",
    Action.ASANA_REMOVE_TAG: "removed a tag in Asana from",
    Action.ASANA_COMMENT: "commented in Asana on",
    Action.ASANA_UPDATE_COMMENT: "edited the progress comment in Asana on",
    Action.ASANA_ATTACH_LINK: "attached a link in Asana to",
    Action.ASANA_COMPLETE_TASK: "marked complete in Asana",
    Action.PIPELINE_RETRY: "asked to retry",
    Action.PIPELINE_STOP_REQUESTED: "asked to stop",
    Action.PIPELINE_RELEASE: "released",
    Action.PIPELINE_REPLY: "took a reply in Asana to the question on",
    Action.PIPELINE_BACKLOG_SKIPPED: "skipped the existing tagged tasks of",
    Action.PIPELINE_AWAITING_APPROVAL: "asked for approval of",
    Action.PIPELINE_APPROVED: "approved",
    Action.PIPELINE_REJECTED: "rejected",
    Action.PIPELINE_APPROVAL_REFUSED: "refused a pilot-approved tag on",
    Action.AUTOMATION_PAUSED: "paused the automation of",
    Action.AUTOMATION_RESUMED: "resumed the automation of",
    Action.WEBHOOK_REGISTER: "asked Asana for a webhook on",
    Action.WEBHOOK_REGISTERED: "registered",
    Action.WEBHOOK_DELETE: "deleted",
    Action.WEBHOOK_HEALTH: "checked the webhooks of",
    Action.WEBHOOK_STATE: "saw a webhook change state:",
    Action.WEBHOOK_HANDSHAKE: "answered the handshake of",
    Action.WEBHOOK_DELIVERY: "received a delivery for",
    Action.WEBHOOK_HANDLED: "handled a delivery for",
    Action.WEBHOOK_STALE: "ignored a stale delivery for",
}
ADMIN = re.compile(rf"^admin\.(?P<model>\w+)\.(?P<verb>{'|'.join(AdminVerb.values)})$")
OUTCOME_NOTE: dict[str, str] = {AuditLog.Outcome.ERROR: " It failed.", AuditLog.Outcome.WARNING: ""}
DETAIL_SHOWN = 300


def _plain(text: str) -> str:
    """Text that may hold Asana's rich text (html_text comments) as one line of plain text."""
    return " ".join(strip_tags(text).split())


def _is_a_name(detail: str) -> bool:
    """Whether the detail starts with a name that must keep its case: a tag (`pilot-stop`)
    or a setting (`rollout_mode = 'shadow'`), not a word starting a sentence."""
    first = detail.split(" ", 1)[0]
    return any(mark in first for mark in "-_") and first == first.lower()


def describe(entry: AuditLog, *, with_detail: bool = True, with_actor: bool = True) -> str:
    """One sentence for the row: who (`with_actor`) did what to which target, then
    (`with_detail`) the detail as plain text, at most DETAIL_SHOWN characters."""
    match = ADMIN.match(entry.action)
    if match:
        verb = f"{ADMIN_VERB_DONE[match['verb']]} the {match['model']}"
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
        sentence += f" {detail if _is_a_name(detail) else detail[0].upper() + detail[1:]}"
        if not sentence.endswith((".", "…", "!", "?")):
            sentence += "."
    return sentence + (OUTCOME_NOTE.get(entry.outcome, "") if with_detail else "")
