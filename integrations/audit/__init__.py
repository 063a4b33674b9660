"""The audit log's home: what is recorded (`Action`), the one function that writes it
(`record`) and how a row reads for people (`text.describe`). The table is
`integrations.models.AuditLog`."""

from integrations.audit.actions import Action, AdminChange, AdminVerb
from integrations.audit.log import Actor, record, record_task

__all__ = ["Action", "Actor", "AdminChange", "AdminVerb", "record", "record_task"]
