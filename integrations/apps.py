from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Plug this app into the site, which imports no app: system checks, the audit of the
        site's announcements, the job functions the admin may schedule, the webhook endpoint,
        the integrations tab, and the schedules (data, so (re)created after every migrate)."""
        from integrations import (
            checks,  # noqa: F401  (registers the system checks)
            tab,
            tab_views,
        )
        from integrations.audit import receivers
        from integrations.pipeline import jobs
        from integrations.webhooks import jobs as webhook_jobs
        from integrations.webhooks import urls as webhook_urls
        from pilotsite import routes
        from pilotsite.admin import Tab, register_tab
        from pilotsite.schedules import register_job
        from pilotsite.signals import admin_changed, task_resubmitted

        admin_changed.connect(receivers.record_admin_change, dispatch_uid="integrations.audit")
        task_resubmitted.connect(
            receivers.record_task_resubmitted, dispatch_uid="integrations.audit.resubmit"
        )
        register_job(jobs.poll_all, former_paths=("integrations.jobs.poll_all",))
        register_job(jobs.run_claimed_job, former_paths=("integrations.jobs.run_claimed_job",))
        register_job(jobs.decided_job)
        register_job(
            webhook_jobs.check_all_webhooks,
            former_paths=("integrations.webhook_jobs.check_all_webhooks",),
        )
        register_job(
            webhook_jobs.handle_delivery,
            former_paths=("integrations.webhooks.handle_delivery",),
        )
        routes.mount("webhooks/", webhook_urls.urlpatterns)
        register_tab(
            Tab(
                slug="integrations",
                label="Integrations",
                template="integrations/tab.html",
                context=tab.context,
                urls=tab_views.urlpatterns,
                order=10,
                permission="integrations.view_asanaconnection",
            )
        )
        post_migrate.connect(
            jobs.ensure_schedules, sender=self, dispatch_uid="integrations.schedules"
        )
