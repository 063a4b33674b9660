"""Recovery: a lease that runs out means its claimant died. A stale claim is given back; a
stale run is reported failed ("interrupted", which makes it retryable), stopped (when a stop
was asked for), or its report that was cut short is finished."""

import logging
from datetime import datetime

from django.utils import timezone

from integrations.asana.client import client_for
from integrations.models import ProcessedTask, Run
from integrations.pipeline.claims import new_token, release, run_lease
from integrations.pipeline.execute import Execution
from integrations.pipeline.lease import LeaseKeeper
from integrations.pipeline.outcome import INTERRUPTED, finish_report, record_outcome

log = logging.getLogger(__name__)
State = ProcessedTask.State
Runner = ProcessedTask.Runner

STOPPED_AFTER = "stopped on request (the process running it ended first)"


def recover_stale(now: datetime | None = None, *, runner: Runner = Runner.RECOVERY) -> int:
    """Give back stale claims and report stale runs; returns how many rows were handled."""
    now = now or timezone.now()
    handled = 0
    stale = ProcessedTask.objects.filter(lease_expires_at__lt=now)
    for pt in stale.filter(state=State.CLAIMED):
        if release(pt, pt.claimed_by, "claim expired before it started"):
            handled += 1
    for pt in stale.filter(state=State.RUNNING).select_related("connection"):
        token = new_token(runner)
        taken = ProcessedTask.objects.filter(
            pk=pt.pk, state=State.RUNNING, claimed_by=pt.claimed_by, lease_expires_at__lt=now
        ).update(claimed_by=token, runner=runner, lease_expires_at=timezone.now() + run_lease())
        if not taken:
            continue
        pt.claimed_by = token
        handled += 1
        if not pt.outcome:
            asked = Run.objects.filter(
                processed_task=pt, number=pt.attempts, stop_requested_at__isnull=False
            ).exists()
            if asked:
                log.warning(
                    "ASANA-%s: found interrupted while stopping, reporting the stop", pt.task_gid
                )
                execution = Execution(ok=False, stopped=True, error=STOPPED_AFTER, output=pt.output)
            else:
                log.warning("ASANA-%s: found interrupted, reporting it failed", pt.task_gid)
                execution = Execution(ok=False, error=INTERRUPTED, output=pt.output)
            record_outcome(pt, execution)
        try:
            with client_for(pt.connection) as client, LeaseKeeper(pt.pk, token):
                finish_report(pt, client)
        except Exception:  # one bad row must not stop recovery (its lease runs out again)
            log.exception("ASANA-%s: recovery failed", pt.task_gid)
    return handled
