from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import tab
        from integrations.pipeline import jobs
        from pilotsite.admin import Tab, register_tab

        # The poll schedule is data, so it is (re)created after every migrate.
        post_migrate.connect(
            jobs.ensure_schedules, sender=self, dispatch_uid="integrations.schedules"
        )

        register_tab(
            Tab(
                slug="integrations",
                label="Integrations",
                template="integrations/tab.html",
                context=tab.context,
                urls=tab.urlpatterns,
                order=10,
                permission="integrations.view_asanaconnection",
            )
        )
