from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PilotAdminConfig(AdminConfig):
    default_site = "pilotsite.admin.PilotAdminSite"


class PilotsiteConfig(AppConfig):
    name = "pilotsite"
    label = "pilotsite"

    def ready(self) -> None:
        from django.contrib import admin

        from pilotsite import checks, qadmin  # noqa: F401  (checks registers the system checks)

        # After the admin's autodiscovery (its app comes first), which registered django-q2's.
        qadmin.install(admin.site)
