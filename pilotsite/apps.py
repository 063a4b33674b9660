from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PilotAdminConfig(AdminConfig):
    default_site = "pilotsite.admin.PilotAdminSite"


class PilotsiteConfig(AppConfig):
    name = "pilotsite"
    label = "pilotsite"

    def ready(self) -> None:
        from pilotsite import checks  # noqa: F401  (registers the system checks)
