"""Running a converted task: a shell command or an in-process Python callable
(`package.module:function`). Which one runs is decided in executor_registry; how a command
is started (directory, user, sandbox, environment) in executor_launch.

The command gets the task as JSON on standard input and as PILOT_TASK_* environment
variables. Exit status 0 is success; if the last non-empty line of standard output is a
JSON object it is the result (`summary`, `url`, `url_title`, or `needs_input`: a question
for a person in Asana, see `needs_input`). A non-zero exit or the
timeout (in seconds, which kills the whole process group) is a failure whose details are
the last lines of standard error (where the actual error is), marked when earlier lines
were dropped. Only the tail of each stream is kept in memory, so a chatty command cannot
exhaust it; everything is redacted before it is cut, so a cut never leaves part of a
secret behind.

While it works a command may report progress by printing lines that are JSON objects with a
`progress` string, `{"progress": "Running the tests"}`, on standard output (the last line is
still the result); a callable that takes a `progress` keyword argument gets a
`progress(text)` function. Both reach the `RunControl` given. A stop request (`RunControl.stop`)
ends a command's whole process group (SIGTERM, then SIGKILL after KILL_GRACE_SECONDS) and a
callable at its next `progress()` call, which then raises `ExecutionStopped`.
"""

import contextlib
import functools
import importlib
import inspect
import json
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import IO, Any

from integrations.pipeline.launch import (
    Identity,
    command_argv,
    executor_environment,
    executor_identity,
    run_directory,
)
from pilotsite.redact import redact
from pilotsite.untrusted import web_url

STREAM_TAIL_BYTES = 64 * 1024
OUTPUT_LIMIT = 20_000
ERROR_LIMIT = 1_500
DROPPED = "[earlier output was dropped]"
SUMMARY_LIMIT = 2_000
KILL_GRACE_SECONDS = 5.0
PROGRESS_LIMIT = 500
# A line longer than this is never a progress line; the rest of it is not buffered.
LINE_LIMIT = 8192
# How often a waiting execution looks at its stop flag.
WAIT_STEP_SECONDS = 0.05
STOPPED_TEXT = "stopped on request"


class ExecutionStopped(Exception):
    """Raised by `progress()` in a Python executor once the run was asked to stop."""


def _no_progress(text: str) -> None:
    return None


@dataclass
class RunControl:
    """The two channels between a running execution and the run: `progress(text)` receives
    each progress line (already redacted and cut to PROGRESS_LIMIT characters), and `stop`
    is set by the run's watcher when someone asks for a stop."""

    progress: Callable[[str], None] = _no_progress
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class Execution:
    ok: bool
    summary: str = ""
    url: str = ""
    url_title: str = ""
    error: str = ""
    output: str = ""
    # Ended because a stop was requested: neither a success nor a failure.
    stopped: bool = False
    # The executor's question (`{"needs_input": "…"}`): the task waits for a reply.
    needs_input: str = ""


def progress_text(text: object) -> str:
    """A progress line as kept and shown: redacted, one line, at most PROGRESS_LIMIT chars."""
    line = " ".join(str(text).split())
    return redact(line)[:PROGRESS_LIMIT]


def progress_of(line: bytes) -> str | None:
    """The text of a progress line (`{"progress": "…"}`), or None for any other line."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("progress"), str):
        return progress_text(value["progress"]) or None
    return None


# -- command executor ----------------------------------------------------------------


class _Tail:
    """Drains a stream in a thread, keeping only its last `limit` bytes."""

    def __init__(
        self,
        stream: BufferedReader,
        limit: int = STREAM_TAIL_BYTES,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.data = bytearray()
        self.truncated = False
        self._stream = stream
        self._limit = limit
        self._on_progress = on_progress
        self._line = bytearray()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        with self._stream:
            while chunk := self._stream.read1(8192):
                self.data += chunk
                if len(self.data) > self._limit:
                    del self.data[: len(self.data) - self._limit]
                    self.truncated = True
                if self._on_progress is not None:
                    self._lines(chunk)

    def _lines(self, chunk: bytes) -> None:
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            self._line += part
            text = progress_of(bytes(self._line))
            if text is not None and self._on_progress is not None:
                self._on_progress(text)
            self._line.clear()
        self._line += rest
        if len(self._line) > LINE_LIMIT:
            # Too long to be a progress line: forget it (the tail keeps the output).
            self._line = bytearray(b"x")

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _feed(stream: IO[bytes], payload: bytes) -> None:
    # A command that never reads its input (or exits early) must not break the run.
    try:
        with stream:
            stream.write(payload)
    except (BrokenPipeError, OSError):
        pass


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_command(
    command: str, task: dict[str, Any], *, timeout: float, control: RunControl | None = None
) -> Execution:
    """Run the operator's shell command on a task, isolated as `executor_launch` describes;
    progress lines go to `control.progress`, and `control.stop` ends it (`stopped=True`).

    Raises LaunchError (from executor_launch) when the isolation settings cannot be met.
    """
    identity = executor_identity()
    with run_directory(identity) as workdir:
        return _run_in(command, task, timeout, workdir, identity, control or RunControl())


def _wait(proc: subprocess.Popen, timeout: float, stop: threading.Event) -> str:
    """Wait for the command to exit: "" when it did, "timeout" or "stop" when it must go."""
    deadline = time.monotonic() + timeout
    while True:
        if stop.is_set():
            return "stop"
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        try:
            proc.wait(timeout=min(WAIT_STEP_SECONDS, left))
            return ""
        except subprocess.TimeoutExpired:
            continue


def _run_in(
    command: str,
    task: dict[str, Any],
    timeout: float,
    workdir: Path,
    identity: Identity,
    control: RunControl,
) -> Execution:
    proc = subprocess.Popen(
        command_argv(command, workdir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=executor_environment(task, workdir, identity),
        # What it writes is its own: nobody else on the machine can read it.
        umask=0o077,
        # Its own process group, so a timeout can kill everything it started.
        start_new_session=True,
        **identity.popen_kwargs(),
    )
    # Pipes opened with the default bufsize are buffered readers: read1 returns what arrived.
    assert proc.stdin
    assert isinstance(proc.stdout, BufferedReader) and isinstance(proc.stderr, BufferedReader)
    feeder = threading.Thread(
        target=_feed, args=(proc.stdin, json.dumps(task).encode()), daemon=True
    )
    feeder.start()
    out, err = _Tail(proc.stdout, on_progress=control.progress), _Tail(proc.stderr)
    ended = _wait(proc, timeout, control.stop)
    timed_out = ended == "timeout"
    if ended:
        _kill_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_SECONDS)
        # Whatever is left of the group (a child that ignores SIGTERM, say) goes too.
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
    # Background children may still hold the pipes open; they do not outlive the task.
    for tail in (out, err):
        tail.thread.join(timeout=KILL_GRACE_SECONDS)
        if tail.thread.is_alive():
            _kill_group(proc, signal.SIGKILL)
            tail.thread.join(timeout=KILL_GRACE_SECONDS)
    feeder.join(timeout=1)

    stdout, stderr = out.text(), err.text()
    output = _bounded_output(stdout, stderr, out.truncated or err.truncated)
    if ended == "stop":
        return Execution(ok=False, stopped=True, error=STOPPED_TEXT, output=output)
    if timed_out or proc.returncode != 0:
        what = (
            f"timed out after {timeout:g} s"
            if timed_out
            else f"the command exited with status {proc.returncode}"
        )
        return Execution(ok=False, error=_error_text(what, stderr, err.truncated), output=output)
    return _result(_last_json_object(stdout), output)


def _last_json_object(stdout: str) -> dict[str, Any]:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        value = json.loads(lines[-1])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def last_lines(text: str, limit: int, *, dropped: bool = False) -> str:
    """The last whole lines of `text` that fit in `limit` characters (the part of a log
    where the error is), starting with DROPPED on its own line when anything before them
    was left out (or `dropped` says the text is already the end of something longer).
    A single last line longer than the limit keeps its end."""
    text = text.strip("\n")
    if len(text) <= limit and not dropped:
        return text
    room = max(limit - len(DROPPED) - 1, 1)
    kept: list[str] = []
    size = 0
    for line in reversed(text.splitlines()):
        if size + len(line) + 1 > room:
            if not kept:
                kept.append(line[-room:])
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join([DROPPED, *reversed(kept)])


def _bounded_output(stdout: str, stderr: str, truncated: bool) -> str:
    text = ""
    if stdout:
        text += f"--- stdout ---\n{stdout.rstrip()}\n"
    if stderr:
        text += f"--- stderr ---\n{stderr.rstrip()}\n"
    return last_lines(redact(text), OUTPUT_LIMIT, dropped=truncated)


def _error_text(what: str, stderr: str, truncated: bool) -> str:
    tail = last_lines(redact(stderr), ERROR_LIMIT, dropped=truncated)
    return f"{what}; the end of its standard error:\n{tail}" if tail.strip() else what


def _result(value: dict[str, Any], output: str) -> Execution:
    url = web_url(value.get("url"))
    if len(url) > 1000:
        url = ""
    question = value.get("needs_input")
    return Execution(
        ok=True,
        summary=redact(str(value.get("summary") or "").strip())[:SUMMARY_LIMIT],
        url=url,
        url_title=str(value.get("url_title") or "").strip()[:200] if url else "",
        output=output,
        needs_input=redact(question.strip())[:SUMMARY_LIMIT] if isinstance(question, str) else "",
    )


# -- Python callable executor --------------------------------------------------------


@functools.lru_cache(maxsize=32)
def resolve_callable(
    dotted: str, label: str = "PILOT_EXECUTOR"
) -> tuple[Callable[..., Any] | None, str]:
    """(the callable, "") or (None, what is wrong and what to do); `label` names the setting
    or executor in the message.

    Cached per value (tests override the setting): the import happens once per process, so
    a fixed setting, or a module installed later, needs a restart like any setting change.
    """
    setting = f"{label} {dotted!r}"
    module_name, _, attr = dotted.partition(":")
    if not module_name.strip() or not attr.strip():
        return None, f"{setting} must look like package.module:function; fix the setting"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, redact(f"{setting} cannot be imported: {exc}; fix the setting")
    except Exception as exc:  # the module itself fails on import
        return None, redact(
            f"{setting} cannot be imported: {type(exc).__name__}: {exc}; fix the setting"
        )
    try:
        func = getattr(module, attr)
    except AttributeError:
        return None, (
            f"{setting} cannot be found: module {module_name!r} has no attribute {attr!r}; "
            "fix the setting"
        )
    if not callable(func):
        return None, f"{setting} is not callable; fix the setting"
    return func, ""


def _takes_progress(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "progress" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def run_callable(
    dotted: str, task: dict[str, Any], *, control: RunControl | None = None
) -> Execution:
    """Call `func(task)`, or `func(task, progress=...)` when it takes a `progress` argument;
    a dict return is the result, a string its summary, raising fails. Once a stop is
    requested its next `progress()` call raises ExecutionStopped (`stopped=True`).

    There is no timeout in-process: a callable that can hang should use its own.
    """
    control = control or RunControl()
    func, problem = resolve_callable(dotted)
    if func is None:
        return Execution(ok=False, error=problem[:ERROR_LIMIT])

    def progress(text: str) -> None:
        if control.stop.is_set():
            raise ExecutionStopped(STOPPED_TEXT)
        if line := progress_text(text):
            control.progress(line)

    try:
        value = func(task, progress=progress) if _takes_progress(func) else func(task)
    except ExecutionStopped:
        return Execution(ok=False, stopped=True, error=STOPPED_TEXT)
    except Exception as exc:
        trace = traceback.format_exc()
        return Execution(
            ok=False,
            error=redact(f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT],
            output=last_lines(redact(trace), OUTPUT_LIMIT),
        )
    if isinstance(value, str):
        value = {"summary": value}
    return _result(value if isinstance(value, dict) else {}, "")
