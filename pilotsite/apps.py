import os

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class PilotAdminConfig(AdminConfig):
    default_site = "pilotsite.admin.PilotAdminSite"


# The q cluster worker's beater, kept referenced for the life of the worker process.
_q_worker_beater = None


def beat_in_q_worker(sender: object, proc_name: str, **kwargs: object) -> None:
    """django-q2's `post_spawn` (sent in each new cluster worker): start its heartbeat, and
    remove the row when the worker exits cleanly (the cluster stopping, or a recycle)."""
    from multiprocessing import util

    from django.conf import settings

    from pilotsite.liveness import Kind, start_beating

    global _q_worker_beater
    _q_worker_beater = start_beating(
        Kind.QCLUSTER,
        detail=f"{settings.Q_CLUSTER['name']} worker of cluster process {os.getppid()}",
    )
    # multiprocessing runs these finalizers when the worker's target returns.
    util.Finalize(_q_worker_beater, _q_worker_beater.stop, exitpriority=10)


class PilotsiteConfig(AppConfig):
    name = "pilotsite"
    label = "pilotsite"

    def ready(self) -> None:
        from django.contrib import admin
        from django_q.signals import post_spawn

        from pilotsite import qadmin
        from pilotsite.schedules import repoint_former_paths
        from pilotsite.secret_files import restrict_on_connect

        # After the admin's autodiscovery (its app comes first), which registered django-q2's.
        qadmin.install(admin.site)
        post_spawn.connect(beat_in_q_worker, dispatch_uid="pilotsite.heartbeat.q_worker")
        connection_created.connect(restrict_on_connect, dispatch_uid="pilotsite.secret_files")
        # Schedules naming a job's path of an earlier release run its current one.
        post_migrate.connect(
            repoint_former_paths, sender=self, dispatch_uid="pilotsite.schedules.repoint"
        )
