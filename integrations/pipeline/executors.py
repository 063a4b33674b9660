"""Named executors: which ones the operator defined, and which one runs a given task.

Commands are configuration, never typed into a web page (that would hand the server to
anyone with an admin login). The operator defines executors in the environment:

- `default` comes from PILOT_EXECUTOR (`package.module:function`) or PILOT_EXECUTOR_COMMAND
  (with PILOT_EXECUTOR_TIMEOUT), as before;
- more come from PILOT_EXECUTORS (JSON) and/or PILOT_EXECUTORS_FILE (a path to a JSON file
  of the same shape)::

      {"docs-agent": {"command": "/opt/agents/docs.sh", "timeout": 900},
       "triage": {"callable": "acme.triage:run"}}

  Each entry has exactly one of `command` (a shell command) or `callable`, and an optional
  `timeout` (seconds, commands only; default PILOT_EXECUTOR_TIMEOUT). Names are lower-case
  letters, digits, `-`, `_` or `.`.

A connection picks one of them (`AsanaConnection.executor`, `default` unless changed on its
card) and may route by tag (`AsanaConnection.executor_routes`: the first rule whose tag the
task carries wins). Mistakes in the definitions are reported by `manage.py check` and on
the card; an entry with a mistake is left out rather than guessed at.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from integrations import audit
from integrations.audit import Action
from integrations.models import AsanaConnection
from integrations.pipeline.execute import (
    Execution,
    RunControl,
    resolve_callable,
    run_callable,
    run_command,
)
from pilotsite.redact import redact

DEFAULT = "default"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ENTRY_KEYS = {"command", "callable", "timeout"}


@dataclass(frozen=True)
class ExecutorSpec:
    """One named executor: a shell `command` (killed after `timeout` seconds) or a Python
    `callable` (`package.module:function`); `origin` is the setting that defined it."""

    name: str
    origin: str
    command: str = ""
    callable: str = ""
    timeout: int = 3600

    @property
    def problem(self) -> str:
        """Why it cannot run ("" when it can): only a callable can fail to resolve."""
        if not self.callable:
            return ""
        label = "PILOT_EXECUTOR" if self.origin == "PILOT_EXECUTOR" else f"executor {self.name!r}"
        return resolve_callable(self.callable, label)[1]

    def describe(self) -> str:
        if self.callable:
            if problem := self.problem:
                return f"{problem}; until then no task is claimed"
            return f"Python callable {self.callable}"
        return f"command {redact(self.command)!r} (timeout {self.timeout} s)"


@dataclass(frozen=True)
class Choice:
    """The executor a task gets (`name`, its `spec` or None when undefined) and why."""

    name: str
    reason: str
    spec: ExecutorSpec | None


def _parse(raw: str, origin: str) -> tuple[list[ExecutorSpec], list[str]]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return [], [f"{origin} is not valid JSON ({exc}); fix it"]
    if not isinstance(data, dict):
        return [], [
            f'{origin} must be a JSON object of name → {{"command": ...}} or '
            f'{{"callable": ...}}, got {type(data).__name__}; fix it'
        ]
    specs, problems = [], []
    for name, entry in data.items():
        where = f"{origin}: executor {name!r}"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                f"{where}: a name is lower-case letters, digits, '-', '_' or '.'; rename it"
            )
            continue
        if not isinstance(entry, dict):
            problems.append(f'{where} must be an object such as {{"command": "..."}}; fix it')
            continue
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            problems.append(
                f"{where} has unknown keys {', '.join(unknown)} (allowed: callable, command, "
                "timeout); fix it"
            )
            continue
        command, func = entry.get("command"), entry.get("callable")
        if bool(command) == bool(func) or not isinstance(command or func, str):
            problems.append(f"{where} needs exactly one of 'command' or 'callable' (a string)")
            continue
        timeout = entry.get("timeout", settings.PILOT_EXECUTOR_TIMEOUT)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            problems.append(f"{where}: timeout must be a whole number of seconds (≥ 1)")
            continue
        specs.append(
            ExecutorSpec(
                name=name,
                origin=origin,
                command=command or "",
                callable=func or "",
                timeout=timeout,
            )
        )
    return specs, problems


def _sources() -> tuple[list[tuple[str, str]], list[str]]:
    sources, problems = [], []
    if settings.PILOT_EXECUTORS.strip():
        sources.append((settings.PILOT_EXECUTORS, "PILOT_EXECUTORS"))
    if path := settings.PILOT_EXECUTORS_FILE.strip():
        origin = f"PILOT_EXECUTORS_FILE {path}"
        try:
            sources.append((Path(path).read_text(encoding="utf-8"), origin))
        except OSError as exc:
            problems.append(f"{origin} cannot be read ({exc.strerror or exc}); fix the path")
        except UnicodeError as exc:
            problems.append(f"{origin} is not UTF-8 ({exc}); save it as UTF-8")
    return sources, problems


def load() -> tuple[dict[str, ExecutorSpec], list[str]]:
    """Every defined executor by name, and what is wrong with the definitions (sentences
    saying what to fix). Read on each call, so a test's or operator's change is seen."""
    executors: dict[str, ExecutorSpec] = {}
    if settings.PILOT_EXECUTOR:
        executors[DEFAULT] = ExecutorSpec(
            DEFAULT, "PILOT_EXECUTOR", callable=settings.PILOT_EXECUTOR
        )
    elif settings.PILOT_EXECUTOR_COMMAND:
        executors[DEFAULT] = ExecutorSpec(
            DEFAULT,
            "PILOT_EXECUTOR_COMMAND",
            command=settings.PILOT_EXECUTOR_COMMAND,
            timeout=settings.PILOT_EXECUTOR_TIMEOUT,
        )
    sources, problems = _sources()
    for raw, origin in sources:
        specs, found = _parse(raw, origin)
        problems += found
        for spec in specs:
            if spec.name in executors:
                problems.append(
                    f"executor {spec.name!r} is defined by both {executors[spec.name].origin} "
                    f"and {origin}; the first is used, remove one"
                )
                continue
            executors[spec.name] = spec
    return executors, problems


def named_executors() -> dict[str, ExecutorSpec]:
    return load()[0]


def _usable(name: str) -> bool:
    spec = named_executors().get(name)
    return spec is not None and not spec.problem


def executor_configured(connection: AsanaConnection | None = None) -> bool:
    """Whether tasks may be claimed: the connection's executor can run (for no connection:
    any executor can). An unresolvable callable counts as none, so no task is claimed only
    to fail."""
    if connection is not None:
        return _usable(connection.executor)
    return any(not spec.problem for spec in named_executors().values())


def describe(name: str) -> str:
    """What the executor `name` is, or why it cannot run, for people."""
    executors = named_executors()
    if name in executors:
        return executors[name].describe()
    if name == DEFAULT and not executors:
        return (
            "no executor configured: set PILOT_EXECUTOR_COMMAND (or PILOT_EXECUTOR, or "
            "PILOT_EXECUTORS); until then no task is claimed"
        )
    return (
        f"executor {name!r} is not defined (PILOT_EXECUTOR_COMMAND, PILOT_EXECUTORS): pick "
        "another one on the connection's card or define it; until then no task is claimed"
    )


def executor_description(connection: AsanaConnection | None = None) -> str:
    return describe(connection.executor if connection is not None else DEFAULT)


def choose(connection: AsanaConnection, labels: list[str]) -> Choice:
    """The executor for a task carrying the tags `labels` (names), and why: the first routing
    rule whose tag it carries, else the connection's executor."""
    executors = named_executors()
    for rule in connection.executor_routes or []:
        if rule.get("tag") in labels:
            name = str(rule.get("executor") or "")
            return Choice(name, f"tagged {rule['tag']!r}", executors.get(name))
    name = connection.executor
    return Choice(name, "the connection's executor", executors.get(name))


def execute(
    task: dict[str, Any], spec: ExecutorSpec | None = None, control: RunControl | None = None
) -> Execution:
    """Run `spec` (default: the `default` executor) on a converted task; `control` carries
    its progress lines out and a stop request in.

    Raises executor_launch.LaunchError when a command cannot be started as configured.
    """
    spec = spec or named_executors().get(DEFAULT)
    if spec is None:
        return Execution(ok=False, error="no executor is configured")
    if spec.callable:
        if problem := spec.problem:
            return Execution(ok=False, error=problem)
        return run_callable(spec.callable, task, control=control)
    return run_command(spec.command, task, timeout=spec.timeout, control=control)


class ExecutorChoiceError(Exception):
    """A choice on the card that cannot be saved; the message says what to change."""


def set_executor_choice(
    connection: AsanaConnection,
    executor: str,
    routes: list[tuple[str, str]],
    *,
    actor: audit.Actor = None,
) -> bool:
    """Set the connection's executor and tag rules (`routes`: (tag name, executor name) in
    order; rows with an empty tag are dropped). Every name must be a defined executor and a
    tag may have one rule. Returns False when nothing changed; raises ExecutorChoiceError
    with nothing saved."""
    defined = named_executors()
    executor = executor.strip()
    if executor not in defined:
        raise ExecutorChoiceError(
            f"There is no executor named {executor!r}; pick one of: {', '.join(defined) or 'none'}."
        )
    rules: list[dict[str, str]] = []
    for tag, name in routes:
        tag, name = tag.strip(), name.strip()
        if not tag:
            continue
        if len(tag) > 100:
            raise ExecutorChoiceError(f"The tag {tag[:20]!r}… is longer than 100 characters.")
        if name not in defined:
            raise ExecutorChoiceError(
                f"The rule for tag {tag!r} names no defined executor; pick one from the list."
            )
        if any(rule["tag"] == tag for rule in rules):
            raise ExecutorChoiceError(f"The tag {tag!r} has two rules; keep one.")
        rules.append({"tag": tag, "executor": name})
    if (connection.executor, connection.executor_routes) == (executor, rules):
        return False
    with transaction.atomic():
        AsanaConnection.objects.filter(pk=connection.pk).update(
            executor=executor, executor_routes=rules
        )
        connection.executor, connection.executor_routes = executor, rules
        routing = "; ".join(f"tagged {r['tag']!r} → {r['executor']}" for r in rules)
        audit.record(
            Action.CONNECTION_EXECUTOR,
            target=str(connection),
            detail=f"executor {executor}" + (f"; {routing}" if routing else "; no tag rules"),
            actor=actor,
            connection=connection,
        )
    return True
