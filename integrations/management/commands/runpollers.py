"""`manage.py runpollers`: poll every enabled connection at its interval and run what it
claims on a bounded pool of worker threads.

The interval is kept in the database (`poll_if_due`), not in this process: several
pollers and the q cluster share it, so a connection is polled once per interval in all.

The loop is a series of small steps that each say whether they did anything (`recover`
stale leases; `take_turns`: each connection's turn of the poll-then-claim loop it shares
with the q schedule, `integrations.pipeline.cycle.poll_then_claim`); it sleeps in short
slices (or until a worker frees up) only when every step returned False. SIGINT/SIGTERM only set a flag: no new claims
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

from integrations.checks import EXECUTOR_READS_SECRETS
from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import claims, recovery, runs
from integrations.pipeline.cycle import poll_then_claim
from integrations.pipeline.executors import executor_configured, executor_description
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
        # The process that runs executors says when they could read pilotsite's keys.
        self.check(tags=[EXECUTOR_READS_SECRETS], include_deployment_checks=True)
        self.once = once
        self.stopping = threading.Event()
        # Set when a worker frees up or a signal arrives, so an idle loop reacts at once.
        self.wake = threading.Event()
        self.workers = workers
        self.running = 0
        self.running_lock = threading.Lock()
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
                worked |= self.take_turns()
            elif self.once:
                return
            if self.once and self.all_polled() and not any(self.queues.values()):
                return
            if not worked:
                self.wake.wait(IDLE_SLICE)
                self.wake.clear()

    # -- steps -------------------------------------------------------------------------

    def recover(self) -> bool:
        """Recover stale claims and runs (`recovery.recover_stale`). Returns False when it is not
        yet time (it runs every half run lease), when recovery failed (the database was
        unavailable; logged, tried again next time), or when nothing was stale."""
        now = time.monotonic()
        if now < self.next_recovery:
            return False
        self.next_recovery = now + claims.run_lease().total_seconds() / 2
        try:
            handled = recovery.recover_stale(runner=claims.Runner.POLLERS)
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

    def take_turns(self) -> bool:
        """Give every enabled connection its turn of the shared poll-then-claim loop
        (`cycle.poll_then_claim`): poll it when due and nothing is left from its last poll,
        claim while a worker is free. Returns False when no connection was polled and
        nothing was claimed: every connection was not due (or, with `--once`, already
        polled), its executor cannot run, its poll failed, or no worker was free."""
        worked = False
        enabled = self.enabled()
        # Candidates of a connection whose polling was turned off meanwhile are not claimed.
        for pk in set(self.queues) - {c.pk for c in enabled}:
            del self.queues[pk]
        for conn in enabled:
            pending = self.queues.setdefault(conn.pk, deque())
            if self.once and conn.pk in self.polled and not pending:
                continue
            if not executor_configured(conn):
                continue
            will_poll = not pending
            if self.once and will_poll:
                self.polled.add(conn.pk)
            try:
                # The slot is shared with other pollers and the q cluster (see poll_if_due).
                turn = poll_then_claim(
                    conn,
                    runner=claims.Runner.POLLERS,
                    pending=pending,
                    names=self.names.setdefault(conn.pk, {}),
                    has_room=self.has_room,
                    hand_over=self.hand_over,
                )
            except Exception:  # one broken connection must not stop the others
                log.exception("poll %s failed", conn.workspace_gid)
                continue
            worked |= turn.worked
            if turn.polled is not None:
                log.info(
                    "poll %s: %s (%d request%s)",
                    conn.workspace_gid,
                    turn.polled.message,
                    turn.polled.requests,
                    "" if turn.polled.requests == 1 else "s",
                )
            elif will_poll and self.once and conn.last_poll_at is not None:
                log.info(
                    "poll %s: not due (polled %.0f s ago, every %d s)",
                    conn.workspace_gid,
                    (timezone.now() - conn.last_poll_at).total_seconds(),
                    conn.poll_interval,
                )
        return worked

    def has_room(self) -> bool:
        """Whether a worker is free for one more claim (never while stopping)."""
        with self.running_lock:
            return not self.stopping.is_set() and self.running < self.workers

    def hand_over(self, processed: ProcessedTask) -> None:
        """Run a claim on a free worker thread."""
        with self.running_lock:
            self.running += 1
        future = self.pool.submit(self.run_task, processed.pk, processed.claimed_by)
        future.add_done_callback(self.free_seat)

    def free_seat(self, _: object) -> None:
        with self.running_lock:
            self.running -= 1
        self.wake.set()

    def run_task(self, pk: int, token: str) -> None:
        try:
            if self.stopping.is_set():
                processed = ProcessedTask.objects.filter(pk=pk).first()
                if processed is not None:
                    claims.release(processed, token, "shutting down before it started")
                return
            if runs.run_claimed(pk, token) is not None:
                with self.executed_lock:
                    self.executed += 1
        except Exception:
            log.exception("processed task %s: unexpected error", pk)
        finally:
            connection.close()
