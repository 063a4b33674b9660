"""Heartbeats of the long-running processes (see `pilotsite.liveness`)."""

from django.db import models


class Heartbeat(models.Model):
    """One live process: the web server (one row per worker process), a q cluster worker or
    `runpollers`. The process touches `last_seen` every PILOT_HEARTBEAT_SECONDS and deletes
    its row when it stops cleanly; rows of processes that died are pruned."""

    class Kind(models.TextChoices):
        WEB = "web", "web server"
        QCLUSTER = "qcluster", "q cluster"
        POLLERS = "pollers", "pollers"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    detail = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["kind", "host", "pid"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "host", "pid"], name="heartbeat_per_process")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.host}:{self.pid}"
