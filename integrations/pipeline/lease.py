"""The threads beside a running task: the lease keeper renews its claim, and the run
watcher (a lease keeper too) shows progress lines and hands over stop requests."""

import logging
import threading
import time
from typing import Self

from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone

from integrations.models import ProcessedTask, Run
from integrations.pipeline.claims import run_lease
from integrations.pipeline.execute import RunControl
from integrations.pipeline.progress import ProgressComment

log = logging.getLogger(__name__)
State = ProcessedTask.State


class LeaseKeeper:
    """Renews a running task's lease from a thread until the work is over."""

    def __init__(self, pk: int, token: str) -> None:
        self.pk, self.token = pk, token
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{pk}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tick_seconds(self) -> float:
        """How long the thread sleeps between looks; a subclass looks more often."""
        return run_lease().total_seconds() / 4

    def tick(self) -> None:
        """Called every `tick_seconds()` (from the keeper's thread)."""

    def _renew(self) -> None:
        renewed = ProcessedTask.objects.filter(
            pk=self.pk, claimed_by=self.token, state=State.RUNNING
        ).update(lease_expires_at=timezone.now() + run_lease())
        if not renewed and not self.lost:
            self.lost = True
            log.warning("processed task %s: lease lost to another process", self.pk)

    def _run(self) -> None:
        renew_every = run_lease().total_seconds() / 4
        renewed_at = time.monotonic()
        try:
            while not self._stop.wait(self.tick_seconds()):
                self.tick()
                if time.monotonic() - renewed_at >= renew_every:
                    self._renew()
                    renewed_at = time.monotonic()
        finally:
            # This thread ends here: its own connection must not outlive it (with
            # CONN_MAX_AGE, close_old_connections would keep it open until collected).
            db_connection.close()


class RunWatcher(LeaseKeeper):
    """While an execution runs, every PILOT_STOP_CHECK_SECONDS: shows its new progress lines
    on the run (the run page has them at once), hands a stop request to the execution
    (`control.stop`), and keeps the lease; the one Asana progress comment is kept up to
    date from a thread of its own (`ProgressComment`), so a slow Asana never delays a stop.
    """

    def __init__(self, pt: ProcessedTask, run: Run, control: RunControl) -> None:
        super().__init__(pt.pk, pt.claimed_by)
        self.run_pk = run.pk
        self.control = control
        self.stop_requested = False
        self._kept: list[dict[str, str]] = list(run.progress or [])
        self._pending: list[dict[str, str]] = []
        self._lines_lock = threading.Lock()
        self.comment = ProgressComment(pt, run)
        control.progress = self.add

    def add(self, text: str) -> None:
        """A progress line from the execution (any thread): kept until the next tick."""
        with self._lines_lock:
            self._pending.append({"at": timezone.now().isoformat(), "text": text})

    def tick_seconds(self) -> float:
        return settings.PILOT_STOP_CHECK_SECONDS

    def tick(self) -> None:
        try:
            self._flush()
            asked = (
                Run.objects.filter(pk=self.run_pk, stop_requested_at__isnull=False)
                .values_list("pk", flat=True)
                .first()
            )
        except Exception:  # the database hiccuped: look again at the next tick
            log.exception("run %s: could not look at its stop flag", self.run_pk)
            return
        if asked and not self.stop_requested:
            self.stop_requested = True
            self.control.stop.set()
            log.info("run %s: stop requested, ending the executor", self.run_pk)

    def _flush(self) -> None:
        with self._lines_lock:
            fresh, self._pending = self._pending, []
        if not fresh:
            return
        self._kept = (self._kept + fresh)[-Run.PROGRESS_KEPT :]
        Run.objects.filter(pk=self.run_pk).update(progress=self._kept)
        self.comment.offer([line["text"] for line in self._kept])

    def __enter__(self) -> "RunWatcher":
        self.comment.start()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.comment.close()
        self._flush()
