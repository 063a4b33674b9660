from django.conf import settings
from django.core.checks import Error, Warning, register

from integrations.executor import executor_problem


@register()
def required_configuration(app_configs, **kwargs):
    problems = []
    if not settings.ASANA_API_BASE_URL.startswith(("https://", "http://")):
        problems.append(
            Error(
                f"ASANA_API_BASE_URL must be an http(s) URL, got {settings.ASANA_API_BASE_URL!r}.",
                id="pilotsite.E002",
            )
        )
    if settings.ASANA_REQUESTS_PER_MINUTE < 1:
        problems.append(Error("ASANA_REQUESTS_PER_MINUTE must be at least 1.", id="pilotsite.E003"))
    if settings.PILOT_EXECUTOR and ":" not in settings.PILOT_EXECUTOR:
        problems.append(
            Error(
                f"PILOT_EXECUTOR must look like package.module:function, got {settings.PILOT_EXECUTOR!r}.",
                id="pilotsite.E004",
            )
        )
    elif settings.PILOT_EXECUTOR and (problem := executor_problem()):
        problems.append(Error(problem, id="pilotsite.E005"))
    if settings.PILOT_EXECUTOR and settings.PILOT_EXECUTOR_COMMAND:
        problems.append(
            Warning(
                "Both PILOT_EXECUTOR and PILOT_EXECUTOR_COMMAND are set; PILOT_EXECUTOR wins.",
                id="pilotsite.W001",
            )
        )
    return problems


@register(deploy=True)
def asana_over_https(app_configs, **kwargs):
    """The token travels in every request's Authorization header: in production it must only
    ever go to Asana over TLS (plain http is for the fake Asana in tests and local runs)."""
    if settings.ASANA_API_BASE_URL.startswith("https://"):
        return []
    return [
        Warning(
            f"ASANA_API_BASE_URL is not https ({settings.ASANA_API_BASE_URL!r}): the Asana token "
            "would be sent in clear text.",
            hint="Unset it (the default is https://app.asana.com/api/1.0) or use an https URL.",
            id="pilotsite.W010",
        )
    ]
