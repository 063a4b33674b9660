"""Former home of the pipeline's django-q2 jobs, kept for one release so that schedules and
tasks queued before an upgrade (`integrations.jobs.poll_all`,
`integrations.jobs.run_claimed_job`) still run. New code names
`integrations.pipeline.jobs`; migrating re-points schedules there."""

from integrations.pipeline.jobs import poll_all, run_claimed_job

__all__ = ["poll_all", "run_claimed_job"]
