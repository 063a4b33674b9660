"""How a command executor is started: where, as whom, inside what, with which environment.

The executor is untrusted: it may run text written by anyone who can tag a task. So it
never starts in the checkout (where `.env` and `db.sqlite3` live) and never inherits
pilotsite's environment:

- each run gets its own scratch directory, mode 0700, under PILOT_EXECUTOR_WORKDIR_BASE
  (default: the system temp directory), removed afterwards unless
  PILOT_EXECUTOR_KEEP_WORKDIR is on;
- its environment is built from an allow-list (`ALLOWED_ENV` plus the names listed in
  PILOT_EXECUTOR_ENV, never a name in `WITHHELD_ENV`), not copied from pilotsite's;
- with PILOT_EXECUTOR_USER (pilotsite running as root) the child takes that user's uid,
  primary group and supplementary groups (initgroups) before it runs anything;
- with PILOT_EXECUTOR_WRAPPER the command runs inside that program (a sandbox such as
  bwrap), `{workdir}` in the wrapper replaced by the run's directory.
"""

import contextlib
import logging
import os
import pwd
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

# pilotsite's own secrets: never passed on, even when PILOT_EXECUTOR_ENV names them.
# DATABASE_URL and REDIS_URL may carry passwords; ASANA_ACCESS_TOKEN is what `asana connect`
# reads; LLM_API_KEY is the status drafts' model key.
WITHHELD_ENV = (
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ASANA_ACCESS_TOKEN",
    "LLM_API_KEY",
)
# What a command gets from pilotsite's environment without being asked for.
ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKDIR_PLACEHOLDER = "{workdir}"


class LaunchError(Exception):
    """The executor cannot be started as configured; the message says which setting to fix."""


class NeedsRoot(LaunchError):
    """PILOT_EXECUTOR_USER is set but this process is not root (a web server that never
    executes tasks may be; the process that executes them must not)."""


@dataclass(frozen=True)
class Identity:
    """Who the command runs as: `uid`/`gid`/`groups` (ints), `name`, `home` (a path)."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str
    switch: bool  # True when the child must change to this identity

    def popen_kwargs(self) -> dict[str, Any]:
        """subprocess.Popen arguments that make the child this user (setgroups, setgid,
        setuid, in that order, before exec)."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def _lookup(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        raise LaunchError(
            f"PILOT_EXECUTOR_USER {user!r} is not a user on this machine; create it "
            "(useradd --system pilot-executor) or fix the setting"
        ) from None


def executor_identity() -> Identity:
    """The OS user commands run as: PILOT_EXECUTOR_USER, or pilotsite's own user.

    Raises LaunchError when the user does not exist, or when switching to it needs root
    and pilotsite is not root.
    """
    configured = settings.PILOT_EXECUTOR_USER.strip()
    me = os.geteuid()
    entry = _lookup(configured) if configured else pwd.getpwuid(me)
    switch = entry.pw_uid != me
    if switch and me != 0:
        raise NeedsRoot(
            f"PILOT_EXECUTOR_USER {configured!r} needs pilotsite to run as root (it runs as "
            f"uid {me}); run the process that executes tasks as root, or use "
            "PILOT_EXECUTOR_WRAPPER instead"
        )
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return Identity(
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=groups,
        name=entry.pw_name,
        home=entry.pw_dir,
        switch=switch,
    )


def workdir_base() -> Path:
    """Where runs' scratch directories are made (PILOT_EXECUTOR_WORKDIR_BASE or the temp dir)."""
    return Path(settings.PILOT_EXECUTOR_WORKDIR_BASE or tempfile.gettempdir()).resolve()


def workdir_problem() -> str:
    """Why the scratch base is unusable ("" when it is fine): it must exist and lie outside
    the project, so a run can never see the checkout by walking up from its directory."""
    base = workdir_base()
    project = Path(settings.BASE_DIR).resolve()
    if base == project or project in base.parents:
        return (
            f"PILOT_EXECUTOR_WORKDIR_BASE {str(base)!r} is inside the project {str(project)!r}; "
            "point it outside (the default is the system temp directory)"
        )
    if not base.is_dir():
        return f"PILOT_EXECUTOR_WORKDIR_BASE {str(base)!r} is not a directory; create it or fix the setting"
    return ""


@contextlib.contextmanager
def run_directory(identity: Identity) -> Iterator[Path]:
    """A fresh directory (mode 0700, owned by the executor's user) for one run; removed
    afterwards unless PILOT_EXECUTOR_KEEP_WORKDIR is on."""
    if problem := workdir_problem():
        raise LaunchError(problem)
    path = Path(tempfile.mkdtemp(prefix="pilot-run-", dir=workdir_base()))
    if identity.switch:
        os.chown(path, identity.uid, identity.gid)
    try:
        yield path
    finally:
        if settings.PILOT_EXECUTOR_KEEP_WORKDIR:
            log.info("kept the executor's working directory %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def wrapper_argv(workdir: Path) -> list[str]:
    """PILOT_EXECUTOR_WRAPPER split like a shell would, `{workdir}` replaced; [] when unset."""
    try:
        parts = shlex.split(settings.PILOT_EXECUTOR_WRAPPER)
    except ValueError as exc:
        raise LaunchError(
            f"PILOT_EXECUTOR_WRAPPER cannot be parsed ({exc}); fix its quoting"
        ) from None
    return [part.replace(WORKDIR_PLACEHOLDER, str(workdir)) for part in parts]


def wrapper_problem() -> str:
    """Why PILOT_EXECUTOR_WRAPPER cannot run ("" when it can, or is unset)."""
    if not settings.PILOT_EXECUTOR_WRAPPER.strip():
        return ""
    try:
        program = wrapper_argv(Path("/"))[0]
    except LaunchError as exc:
        return str(exc)
    if shutil.which(program) is None:
        return f"PILOT_EXECUTOR_WRAPPER's program {program!r} is not installed or not executable"
    return ""


def command_argv(command: str, workdir: Path) -> list[str]:
    """The argv that runs the operator's shell command, inside the wrapper when there is one."""
    return [*wrapper_argv(workdir), "/bin/sh", "-c", command]


def passed_names() -> list[str]:
    """Names a command may receive from pilotsite's environment, withheld ones removed."""
    extra = [n.strip() for n in settings.PILOT_EXECUTOR_ENV if n.strip()]
    return [n for n in (*ALLOWED_ENV, *extra) if n not in WITHHELD_ENV]


def executor_environment(task: dict[str, Any], workdir: Path, identity: Identity) -> dict[str, str]:
    """The command's whole environment: the allow-list, who it is, where it works, the task."""
    env = {name: os.environ[name] for name in passed_names() if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(
        {
            "HOME": identity.home,
            "USER": identity.name,
            "LOGNAME": identity.name,
            "PWD": str(workdir),
            "TMPDIR": str(workdir),
            "PILOT_TASK_ID": str(task.get("id") or ""),
            "PILOT_TASK_GID": str(task.get("gid") or ""),
            "PILOT_TASK_TITLE": str(task.get("title") or ""),
            "PILOT_TASK_URL": str(task.get("url") or ""),
            "PILOT_TASK_PRIORITY": str(task.get("priority") or ""),
        }
    )
    return env
