"""`manage.py runpollers`: poll every enabled connection at its interval and run what it
claims on a bounded pool of worker threads.

The interval is kept in the database (`poll_if_due`), not in this process: several
pollers and the q cluster share it, so a connection is polled once per interval in all.

The loop is a series of small steps that each say whether they did anything (recover
stale leases, poll what is due, claim one candidate when a worker is free); it sleeps in
short slices only when nothing happened. SIGINT/SIGTERM only set a flag: no new claims
are made, running executions finish and report, a claim whose execution had not started
yet is released, and the process exits with nothing left claimed.
"""

import logging
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection
from django.template.defaultfilters import pluralize
from django.utils import timezone

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import runs
from integrations.pipeline.executors import executor_configured, executor_description
from integrations.pipeline.poll import poll_if_due
from pilotsite.liveness import Kind, start_beating

log = logging.getLogger("integrations.runpollers")

IDLE_SLICE = 0.5


class Command(BaseCommand):
    help = "Poll Asana for tasks tagged for the pilot and execute them (Ctrl-C stops gracefully)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="One cycle: poll every connection that is due, run what was claimed, wait for "
            "it and exit.",
        )
        parser.add_argument(
            "--workers", type=int, default=1, help="Tasks executed at the same time (default 1)."
        )

    def handle(self, *args: Any, once: bool, workers: int, **options: Any) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        self.once = once
        self.stopping = threading.Event()
        # Set when a worker frees up or a signal arrives, so an idle loop reacts at once.
        self.wake = threading.Event()
        self.seats = threading.BoundedSemaphore(workers)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pilot-task")
        self.queues: dict[int, deque[str]] = {}
        self.names: dict[int, dict[str, str]] = {}
        self.polled: set[int] = set()
        self.next_recovery = 0.0
        self.executed = 0
        self.executed_lock = threading.Lock()
        previous = {s: signal.signal(s, self.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        log.info("runpollers started: %d worker(s); executor: %s", workers, executor_description())
        if not executor_configured():
            log.warning("no executor configured: nothing will be claimed")
        # A cron-driven `--once` is not a long-running process: it leaves no heartbeat.
        beater = (
            None
            if once
            else start_beating(Kind.POLLERS, detail=f"{workers} worker{pluralize(workers)}")
        )
        try:
            self.loop()
        finally:
            # Executions already running finish and report before the process exits.
            self.pool.shutdown(wait=True)
            if beater is not None:
                beater.stop()
            close_old_connections()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("runpollers stopped: %d task(s) executed", self.executed)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s: no new claims; waiting for running executions", signal.strsignal(signum))
        self.stopping.set()
        self.wake.set()

    def loop(self) -> None:
        while not self.stopping.is_set():
            close_old_connections()
            worked = self.recover()
            if executor_configured():
                worked |= self.poll_due()
                while self.claim_one():
                    worked = True
            elif self.once:
                return
            if self.once and self.all_polled() and not any(self.queues.values()):
                return
            if not worked:
                self.wake.wait(IDLE_SLICE)
                self.wake.clear()

    # -- steps -------------------------------------------------------------------------

    def recover(self) -> bool:
        now = time.monotonic()
        if now < self.next_recovery:
            return False
        self.next_recovery = now + runs.run_lease().total_seconds() / 2
        try:
            handled = runs.recover_stale(runner=runs.Runner.POLLERS)
        except Exception:  # the database may be briefly unavailable; try again later
            log.exception("recovering stale tasks failed")
            return False
        if handled:
            log.info("recovered %d stale task(s)", handled)
        return bool(handled)

    def enabled(self) -> list[AsanaConnection]:
        return list(AsanaConnection.objects.filter(polling_enabled=True))

    def all_polled(self) -> bool:
        return all(c.pk in self.polled for c in self.enabled())

    def poll_due(self) -> bool:
        worked = False
        for conn in self.enabled():
            if self.once and conn.pk in self.polled:
                continue
            # Candidates still queued from the last poll come first; no need to ask again.
            if self.queues.get(conn.pk):
                continue
            if not executor_configured(conn):
                continue
            if self.once:
                self.polled.add(conn.pk)
            try:
                # The slot is shared with other pollers and the q cluster (see poll_if_due).
                result = poll_if_due(conn)
            except Exception:  # one broken connection must not stop the others
                log.exception("poll %s failed", conn.workspace_gid)
                continue
            if result is None:
                if self.once and conn.last_poll_at is not None:
                    log.info(
                        "poll %s: not due (polled %.0f s ago, every %d s)",
                        conn.workspace_gid,
                        (timezone.now() - conn.last_poll_at).total_seconds(),
                        conn.poll_interval,
                    )
                continue
            self.queues[conn.pk] = deque(result.candidates)
            self.names[conn.pk] = result.names
            log.info(
                "poll %s: %s (%d request%s)",
                conn.workspace_gid,
                result.message,
                result.requests,
                "" if result.requests == 1 else "s",
            )
            worked = True
        return worked

    def claim_one(self) -> bool:
        """Claim the next candidate if a worker is free; True when one was handed over."""
        for conn_pk, queue in self.queues.items():
            while queue and not self.stopping.is_set():
                if not self.seats.acquire(blocking=False):
                    return False
                gid = queue.popleft()
                conn = AsanaConnection.objects.filter(pk=conn_pk, polling_enabled=True).first()
                processed = None
                if conn is not None:
                    processed = runs.claim(
                        conn,
                        gid,
                        source="poll",
                        task_name=self.names.get(conn_pk, {}).get(gid, ""),
                        runner=runs.Runner.POLLERS,
                    )
                if processed is None:
                    self.seats.release()
                    continue
                future = self.pool.submit(self.run_task, processed.pk, processed.claimed_by)
                future.add_done_callback(self.free_seat)
                return True
        return False

    def free_seat(self, _: object) -> None:
        self.seats.release()
        self.wake.set()

    def run_task(self, pk: int, token: str) -> None:
        try:
            if self.stopping.is_set():
                processed = ProcessedTask.objects.filter(pk=pk).first()
                if processed is not None:
                    runs.release(processed, token, "shutting down before it started")
                return
            if runs.run_claimed(pk, token) is not None:
                with self.executed_lock:
                    self.executed += 1
        except Exception:
            log.exception("processed task %s: unexpected error", pk)
        finally:
            connection.close()
