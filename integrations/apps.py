from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import tab
        from pilotsite.admin import Tab, register_tab

        register_tab(
            Tab(
                slug="integrations",
                label="Integrations",
                template="integrations/tab.html",
                context=tab.context,
                urls=tab.urlpatterns,
                order=10,
            )
        )
