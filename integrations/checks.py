"""System checks of the integrations settings: the Asana address and budget, and the executors
(defined, runnable, isolated from pilotsite's keys and database). Registered on import, from
`IntegrationsConfig.ready()`; their ids keep the `pilotsite.` prefix operators may silence."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from integrations.pipeline.executors import DEFAULT, load
from integrations.pipeline.launch import (
    LaunchError,
    NeedsRoot,
    executor_identity,
    workdir_problem,
    wrapper_problem,
)
from pilotsite.secret_files import readable_by, secret_files


@register()
def required_configuration(app_configs, **kwargs):
    problems: list[CheckMessage] = []
    if not settings.ASANA_API_BASE_URL.startswith(("https://", "http://")):
        problems.append(
            Error(
                f"ASANA_API_BASE_URL must be an http(s) URL, got {settings.ASANA_API_BASE_URL!r}.",
                id="pilotsite.E002",
            )
        )
    if settings.ASANA_REQUESTS_PER_MINUTE < 1:
        problems.append(Error("ASANA_REQUESTS_PER_MINUTE must be at least 1.", id="pilotsite.E003"))
    malformed_default = bool(settings.PILOT_EXECUTOR) and ":" not in settings.PILOT_EXECUTOR
    if malformed_default:
        problems.append(
            Error(
                f"PILOT_EXECUTOR must look like package.module:function, got {settings.PILOT_EXECUTOR!r}.",
                id="pilotsite.E004",
            )
        )
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


@register()
def named_executors(app_configs, **kwargs):
    """Every executor the operator defined can run (E005), and the definitions parse (E006)."""
    executors, definition_problems = load()
    problems = [Error(p, id="pilotsite.E006") for p in definition_problems]
    for spec in executors.values():
        if spec.name == DEFAULT and spec.origin == "PILOT_EXECUTOR" and ":" not in spec.callable:
            continue  # reported once, as E004
        if problem := spec.problem:
            problems.append(Error(problem, id="pilotsite.E005"))
    return problems


@register()
def executor_isolation(app_configs, **kwargs):
    """Commands can be started as configured (E007, W003)."""
    problems: list[CheckMessage] = [
        Error(p, id="pilotsite.E007") for p in (workdir_problem(), wrapper_problem()) if p
    ]
    try:
        executor_identity()
    except NeedsRoot as exc:
        # Only the processes that execute tasks (runpollers, qcluster) must be root; the
        # web server may not be, so this must not stop it from starting.
        return [*problems, Warning(str(exc), id="pilotsite.W003")]
    except LaunchError as exc:
        return [*problems, Error(str(exc), id="pilotsite.E007")]
    return problems


EXECUTOR_READS_SECRETS = "executor_reads_secrets"
"""The check tag of `executor_reads_secrets`, for the commands that show it."""


@register(EXECUTOR_READS_SECRETS, deploy=True)
def executor_reads_secrets(app_configs, **kwargs):
    """Commands cannot read pilotsite's keys or database (W002). A deployment check: it holds
    for as long as the settings do, so it is shown where it helps, by `check --deploy` and
    when `runpollers` (so also `runall`) starts, not on every `migrate` or `collectstatic`.
    Nothing when the identity cannot be worked out: `executor_isolation` reports that."""
    if not any(spec.command for spec in load()[0].values()) or settings.PILOT_EXECUTOR_WRAPPER:
        return []
    try:
        identity = executor_identity()
    except LaunchError:
        return []
    readable = [str(p) for p in secret_files() if readable_by(p, identity.uid, identity.groups)]
    if not readable:
        return []
    own = " (pilotsite's own user)" if not identity.switch else ""
    return [
        Warning(
            f"The executor runs as {identity.name}{own} and can read "
            f"{', '.join(readable)}: anyone who can tag a task could read pilotsite's keys "
            "and database.",
            hint="Set PILOT_EXECUTOR_USER (pilotsite running as root) or "
            "PILOT_EXECUTOR_WRAPPER (a sandbox such as bwrap), and keep these files 0600; "
            "see the README's security model.",
            id="pilotsite.W002",
        )
    ]


@register()
def scale_out_database(app_configs, **kwargs):
    """Redis as django-q2's broker is for several clusters (on several machines) sharing one
    queue; on SQLite they would all write through one file's lock (SQLite serialises writers,
    and other machines cannot open the file at all), so the added processes wait instead of
    working. Supported: SQLite with the ORM broker on one machine, or PostgreSQL with either
    broker (README "Scaling out")."""
    if not settings.REDIS_URL:
        return []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return []
    return [
        Warning(
            "REDIS_URL is set (django-q2's Redis broker, for several q clusters) but the database "
            "is SQLite: every cluster, poller and web worker writes through one file lock, so "
            "more processes lose throughput rather than add it, and clusters on other machines "
            "cannot share the file.",
            hint="Use PostgreSQL (DATABASE_URL=postgres://user@host/db) for a multi-process "
            "deployment, or unset REDIS_URL to run one cluster with the ORM broker on SQLite.",
            id="pilotsite.W020",
        )
    ]
