from django.apps import AppConfig


class GoalsConfig(AppConfig):
    name = "goals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from goals import tab
        from pilotsite.admin import Tab, register_tab

        register_tab(
            Tab(
                slug="goals",
                label="Goals",
                template="goals/tab.html",
                context=tab.context,
                urls=tab.urlpatterns,
                order=20,
            )
        )
