"""Former home of the webhook health job, kept for one release so that schedules and tasks
queued before an upgrade (`integrations.webhook_jobs.check_all_webhooks`) still run. New
code names `integrations.webhooks.jobs`; migrating re-points schedules there."""

from integrations.webhooks.jobs import check_all_webhooks

__all__ = ["check_all_webhooks"]
