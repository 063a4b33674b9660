"""Every action the audit log records, so rows can be listed and filtered by what happened.

The stored value is the dotted code (`connection.create`); `text.describe` turns a row into a
sentence for people. Changes made through the admin are recorded as `AdminChange`
(`admin.<model>.<add|change|delete>`), one per registered model, so they are not listed here.
"""

from dataclasses import dataclass

from django.db import models


class Action(models.TextChoices):
    """What an audit row records; the value is what the `AuditLog.action` column holds, the
    label what people read (the audit admin's filter and row page)."""

    CONNECTION_CREATE = "connection.create", "workspace connected"
    CONNECTION_UPDATE = "connection.update", "token replaced"
    CONNECTION_TEST = "connection.test", "connection tested"
    CONNECTION_SETTINGS = "connection.settings", "connection settings changed"
    CONNECTION_EXECUTOR = "connection.executor", "executor changed"
    MAPPING_CREATE = "mapping.create", "employee mapped to an Asana user"
    MAPPING_AUTOMAP = "mapping.automap", "employees mapped by email"
    EMPLOYEES_IMPORT = "employees.import", "employees imported"
    ASANA_CREATE_TAG = "asana.create_tag", "tag created in Asana"
    ASANA_ADD_TAG = "asana.add_tag", "tag added to a task in Asana"
    ASANA_REMOVE_TAG = "asana.remove_tag", "tag removed from a task in Asana"
    ASANA_COMMENT = "asana.comment", "comment posted in Asana"
    ASANA_UPDATE_COMMENT = "asana.update_comment", "progress comment edited in Asana"
    ASANA_ATTACH_LINK = "asana.attach_link", "link attached in Asana"
    ASANA_COMPLETE_TASK = "asana.complete_task", "task completed in Asana"
    PIPELINE_RETRY = "pipeline.retry", "task retry asked for"
    PIPELINE_STOP_REQUESTED = "pipeline.stop_requested", "run stop asked for"
    PIPELINE_RELEASE = "pipeline.release", "skipped task released"
    PIPELINE_REPLY = "pipeline.reply", "reply to a question taken"
    PIPELINE_BACKLOG_SKIPPED = "pipeline.backlog_skipped", "existing tagged tasks skipped"
    PIPELINE_AWAITING_APPROVAL = "pipeline.awaiting_approval", "task waiting for approval"
    PIPELINE_APPROVED = "pipeline.approved", "task approved"
    PIPELINE_REJECTED = "pipeline.rejected", "task rejected"
    PIPELINE_APPROVAL_REFUSED = "pipeline.approval_refused", "approval by a non-approver refused"
    AUTOMATION_PAUSED = "automation.paused", "automation paused by the safety rails"
    AUTOMATION_RESUMED = "automation.resumed", "automation resumed"
    WEBHOOK_REGISTER = "webhook.register", "webhook asked of Asana"
    WEBHOOK_REGISTERED = "webhook.registered", "webhook registered"
    WEBHOOK_DELETE = "webhook.delete", "webhook deleted"
    WEBHOOK_HEALTH = "webhook.health", "webhooks checked"
    WEBHOOK_STATE = "webhook.state", "webhook state changed"
    WEBHOOK_HANDSHAKE = "webhook.handshake", "webhook handshake answered"
    WEBHOOK_DELIVERY = "webhook.delivery", "webhook delivery received"
    WEBHOOK_HANDLED = "webhook.handled", "webhook delivery handled"
    WEBHOOK_STALE = "webhook.stale", "stale webhook delivery ignored"
    WEBHOOK_REPLAY = "webhook.replay", "repeated webhook delivery ignored"
    WEBHOOK_HEARTBEAT = "webhook.heartbeat", "webhook heartbeat received"
    WEBHOOK_REFUSED = "webhook.refused", "webhook request refused"
    GOALS_SYNC_REQUESTED = "goals.sync_requested", "goal sync requested"
    GOALS_STATUS_DRAFTED = "goals.status_drafted", "status update drafted"
    GOALS_STATUS_POSTED = "goals.status_posted", "status update approved and posted to Asana"
    GOALS_STATUS_REJECTED = "goals.status_rejected", "status update draft rejected"
    TASK_RESUBMIT = "admin.task.resubmit", "django-q2 task resubmitted"


class AdminVerb(models.TextChoices):
    """What Django's admin did to an object (its `LogEntry` flags, by name)."""

    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


# What the admin did, as people say it.
ADMIN_VERB_DONE: dict[str, str] = {
    AdminVerb.ADD: "added",
    AdminVerb.CHANGE: "changed",
    AdminVerb.DELETE: "deleted",
}


@dataclass(frozen=True)
class AdminChange:
    """An addition, change or deletion made through the admin: stored as
    `admin.<model_name>.<verb>`, e.g. `admin.user.add`."""

    model_name: str
    verb: AdminVerb

    def __str__(self) -> str:
        return f"admin.{self.model_name}.{self.verb}"


def action_label(action: str) -> str:
    """What people read for a stored action code: `Action`'s label ("webhook registered"),
    "<model> <verb>d in the admin" for an admin change ("user added in the admin"), else the
    code itself (an action a later version no longer knows)."""
    if action in Action.values:
        return str(Action(action).label)
    parts = action.split(".")
    if len(parts) == 3 and parts[0] == "admin" and parts[2] in AdminVerb.values:
        return f"{parts[1]} {ADMIN_VERB_DONE[parts[2]]} in the admin"
    return action
