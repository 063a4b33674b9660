from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GoalsConfig(AppConfig):
    name = "goals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from goals import jobs, roles, tab
        from pilotsite.admin import Tab, register_tab

        register_tab(
            Tab(
                slug="goals",
                label="Goals",
                template="goals/tab.html",
                context=tab.context,
                urls=tab.urlpatterns,
                order=20,
                permission="goals.view_goal",
            )
        )
        # The schedule is data, so it is (re)created after every migrate.
        post_migrate.connect(jobs.ensure_schedules, sender=self, dispatch_uid="goals.schedules")
        # After auth's own handler has created the permissions (auth is installed earlier).
        post_migrate.connect(
            roles.ensure_managers_group, sender=self, dispatch_uid="goals.managers_group"
        )
