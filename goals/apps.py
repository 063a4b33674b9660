from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GoalsConfig(AppConfig):
    name = "goals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Plug this app into the site and the integrations tab: its tab, its section of each
        connection card, its job functions, and its schedule and Managers group (data, so
        (re)created after every migrate)."""
        from goals import card, jobs, roles, tab
        from integrations.card_sections import CardSection, register_card_section
        from pilotsite.admin import Tab, register_tab
        from pilotsite.schedules import register_job

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
        register_card_section(
            CardSection(
                slug="goals",
                title="Goals",
                template="goals/_card_goals.html",
                card=card.card,
                busy=card.busy,
            )
        )
        register_job(jobs.sync_all_due)
        register_job(jobs.sync_connection)
        # The schedule is data, so it is (re)created after every migrate.
        post_migrate.connect(jobs.ensure_schedules, sender=self, dispatch_uid="goals.schedules")
        # After auth's own handler has created the permissions (auth is installed earlier).
        post_migrate.connect(
            roles.ensure_managers_group, sender=self, dispatch_uid="goals.managers_group"
        )
