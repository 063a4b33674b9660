"""Every action the audit log records, so rows can be listed and filtered by what happened.

The stored value is the dotted code (`connection.create`); `text.describe` turns a row into a
sentence for people. Changes made through the admin are recorded as `AdminChange`
(`admin.<model>.<add|change|delete>`), one per registered model, so they are not listed here.
"""

from dataclasses import dataclass

from django.db import models


class Action(models.TextChoices):
    """What an audit row records; the value is what the `AuditLog.action` column holds."""

    CONNECTION_CREATE = "connection.create"
    CONNECTION_UPDATE = "connection.update"
    CONNECTION_TEST = "connection.test"
    CONNECTION_SETTINGS = "connection.settings"
    CONNECTION_EXECUTOR = "connection.executor"
    MAPPING_CREATE = "mapping.create"
    MAPPING_AUTOMAP = "mapping.automap"
    EMPLOYEES_IMPORT = "employees.import"
    ASANA_CREATE_TAG = "asana.create_tag"
    ASANA_ADD_TAG = "asana.add_tag"
    ASANA_REMOVE_TAG = "asana.remove_tag"
    ASANA_COMMENT = "asana.comment"
    ASANA_UPDATE_COMMENT = "asana.update_comment"
    ASANA_ATTACH_LINK = "asana.attach_link"
    ASANA_COMPLETE_TASK = "asana.complete_task"
    PIPELINE_RETRY = "pipeline.retry"
    PIPELINE_STOP_REQUESTED = "pipeline.stop_requested"
    PIPELINE_RELEASE = "pipeline.release"
    PIPELINE_BACKLOG_SKIPPED = "pipeline.backlog_skipped"
    PIPELINE_AWAITING_APPROVAL = "pipeline.awaiting_approval"
    PIPELINE_APPROVED = "pipeline.approved"
    PIPELINE_REJECTED = "pipeline.rejected"
    PIPELINE_APPROVAL_REFUSED = "pipeline.approval_refused"
    WEBHOOK_REGISTER = "webhook.register"
    WEBHOOK_REGISTERED = "webhook.registered"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_HEALTH = "webhook.health"
    WEBHOOK_STATE = "webhook.state"
    WEBHOOK_HANDSHAKE = "webhook.handshake"
    WEBHOOK_DELIVERY = "webhook.delivery"
    WEBHOOK_HANDLED = "webhook.handled"
    WEBHOOK_STALE = "webhook.stale"
    WEBHOOK_REPLAY = "webhook.replay"
    WEBHOOK_HEARTBEAT = "webhook.heartbeat"
    WEBHOOK_REFUSED = "webhook.refused"
    GOALS_SYNC_REQUESTED = "goals.sync_requested"
    GOALS_STATUS_DRAFTED = "goals.status_drafted", "status update drafted"
    GOALS_STATUS_POSTED = "goals.status_posted", "status update approved and posted to Asana"
    GOALS_STATUS_REJECTED = "goals.status_rejected", "status update draft rejected"
    TASK_RESUBMIT = "admin.task.resubmit", "django-q2 task resubmitted"


class AdminVerb(models.TextChoices):
    """What Django's admin did to an object (its `LogEntry` flags, by name)."""

    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


@dataclass(frozen=True)
class AdminChange:
    """An addition, change or deletion made through the admin: stored as
    `admin.<model_name>.<verb>`, e.g. `admin.user.add`."""

    model_name: str
    verb: AdminVerb

    def __str__(self) -> str:
        return f"admin.{self.model_name}.{self.verb}"
