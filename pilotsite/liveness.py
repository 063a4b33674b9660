"""What is running: heartbeats of the long-running processes and the facts the cards show.

Each long-running process records a `Heartbeat` row (kind, host, pid) and touches it every
PILOT_HEARTBEAT_SECONDS from a background thread: `manage.py runpollers`, each q cluster
worker (started from django-q2's `post_spawn` signal, so it works the same on the ORM and the
Redis broker) and each web server process (`pilotsite.wsgi`). A clean stop deletes the row;
a process silent for three beats counts as stopped, and rows silent for ten minutes are
pruned by the next beat of any process.
"""

import logging
import os
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from pilotsite.models import Heartbeat

log = logging.getLogger(__name__)

Kind = Heartbeat.Kind
MISSED_BEATS = 3
PRUNE_AFTER = timedelta(minutes=10)
# Shown as written (HTML and terminal alike), so commands are quoted, not marked up.
START = "start “make run” (or “manage.py qcluster”)"
NO_WORKER = f"no worker is running: tagged tasks will not be picked up — {START}"
NO_CLUSTER = (
    "no q cluster is running: queued jobs (Sync now, webhook deliveries, schedules) wait "
    f"until one starts — {START}"
)


def interval() -> float:
    """Seconds between two beats of a process (PILOT_HEARTBEAT_SECONDS)."""
    return float(settings.PILOT_HEARTBEAT_SECONDS)


def alive_window() -> timedelta:
    """A process whose last beat is older than this counts as stopped."""
    return timedelta(seconds=interval() * MISSED_BEATS)


def beat(kind: str, *, started_at: datetime, detail: str = "", now: datetime | None = None) -> None:
    """Record that this process (`kind`, this host, this pid) is alive at `now`, and prune
    rows of processes silent for PRUNE_AFTER. Two statements on a quiet beat: an UPDATE that
    matches the row and a DELETE that finds nothing to prune."""
    now = now or timezone.now()
    key = {"kind": kind, "host": socket.gethostname(), "pid": os.getpid()}
    if not Heartbeat.objects.filter(**key).update(last_seen=now, detail=detail):
        # Another thread of this process may have created it first.
        with suppress(IntegrityError), transaction.atomic():
            Heartbeat.objects.create(**key, detail=detail, started_at=started_at, last_seen=now)
    Heartbeat.objects.filter(last_seen__lt=now - PRUNE_AFTER).delete()


def forget(kind: str) -> None:
    """This process stops: its row goes at once, so the card need not wait for it to age."""
    Heartbeat.objects.filter(kind=kind, host=socket.gethostname(), pid=os.getpid()).delete()


class Beater:
    """A daemon thread that beats for `kind` until `stop()` (which also forgets the row).

    A failed beat (database briefly unavailable) is logged and tried again at the next one;
    the thread's database connection is closed after every beat, so it holds none between.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        self.started_at = timezone.now()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{kind}", daemon=True)

    def start(self) -> "Beater":
        self.thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                beat(self.kind, started_at=self.started_at, detail=self.detail)
            except DatabaseError:
                log.warning("heartbeat (%s) not recorded; trying again", self.kind, exc_info=True)
            finally:
                connection.close()
            if self.stopping.wait(interval()):
                return

    def stop(self) -> None:
        """Stop beating and delete this process's row; safe to call twice."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        try:
            forget(self.kind)
        except DatabaseError:
            log.warning("heartbeat (%s) row not removed; it ages out", self.kind, exc_info=True)
        finally:
            connection.close()


def start_beating(kind: str, detail: str = "") -> Beater:
    """Start a `Beater` for this process and return it (call `.stop()` on a clean exit)."""
    return Beater(kind, detail).start()


def ago(seconds: float) -> str:
    """`seconds` for people: "4 s ago", "3 min ago", "2 h ago"."""
    seconds = max(seconds, 0)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


@dataclass(frozen=True)
class Process:
    """One heartbeat row, as the card shows it."""

    kind: str
    label: str
    host: str
    pid: int
    detail: str
    started_at: datetime
    last_seen: datetime
    alive: bool
    last_seen_ago: str


@dataclass(frozen=True)
class Liveness:
    """What runs now. `processes` are alive first, then stopped ones not yet pruned;
    `warnings` are the sentences to show (empty when all is well)."""

    processes: list[Process] = field(default_factory=list)
    web_alive: bool = False
    cluster_alive: bool = False
    pollers_alive: bool = False

    @property
    def worker_alive(self) -> bool:
        """Something picks up tagged tasks: a q cluster or `runpollers`."""
        return self.cluster_alive or self.pollers_alive

    @property
    def warnings(self) -> list[str]:
        if not self.worker_alive:
            return [NO_WORKER]
        if not self.cluster_alive:
            return [NO_CLUSTER]
        return []


def liveness(now: datetime | None = None) -> Liveness:
    """The liveness facts from the heartbeat rows (one query)."""
    now = now or timezone.now()
    oldest_alive = now - alive_window()
    processes = [
        Process(
            kind=row.kind,
            label=row.get_kind_display(),
            host=row.host,
            pid=row.pid,
            detail=row.detail,
            started_at=row.started_at,
            last_seen=row.last_seen,
            alive=row.last_seen >= oldest_alive,
            last_seen_ago=ago((now - row.last_seen).total_seconds()),
        )
        for row in Heartbeat.objects.filter(last_seen__gte=now - PRUNE_AFTER)
    ]
    processes.sort(key=lambda p: (not p.alive, p.kind, p.host, p.pid))
    alive = {p.kind for p in processes if p.alive}
    return Liveness(
        processes=processes,
        web_alive=Kind.WEB in alive,
        cluster_alive=Kind.QCLUSTER in alive,
        pollers_alive=Kind.POLLERS in alive,
    )


def cluster_absent_note(what: str) -> str:
    """The sentence that replaces "queued; progress shows below" when no q cluster is alive
    to run `what` ("The goal sync"), or "" when one is."""
    if liveness().cluster_alive:
        return ""
    return f"{what} is queued, but no q cluster is running to do it: {START}."


def worker_absent_note(what: str) -> str:
    """Like `cluster_absent_note`, for work any worker picks up (the next poll)."""
    if liveness().worker_alive:
        return ""
    return f"{what}, but no worker is running to pick it up: {START}."
