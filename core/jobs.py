"""Background jobs on Procrastinate, in PostgreSQL (README, "Background jobs").

An app defines its tasks in its own ``tasks.py`` (Procrastinate's Django app imports every
installed app's ``tasks`` module) and defers them with :func:`defer` inside the
``transaction.atomic()`` block of the change that needs them::

    from procrastinate.contrib.django import app
from procrastinate.jobs import Job

    from core.jobs import BACKOFF, defer

    @app.task(name="payments.capture", retry=BACKOFF)
    def capture_payment(*, payment_id: int) -> None: ...

    with transaction.atomic():
        payment = Payment.objects.create(...)
        defer(capture_payment, payment_id=payment.pk, lock=f"payment:{payment.pk}")

The job is a row written on Django's connection, so it commits or rolls back with the change.
A job may run more than once (a worker killed mid-job is run again), so its effect must be
keyed by its arguments: a conditional UPDATE or a unique row in the job's own transaction,
and the same key as the ``Idempotency-Key`` of any call to another system.
"""

import logging
import time
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app
from procrastinate.jobs import Job
from procrastinate.tasks import Task
from procrastinate.types import TimeDeltaParams

logger = logging.getLogger(__name__)

# Retries after 2, 4, 8, … 256 s (about 8.5 minutes in all), then the job is failed.
BACKOFF = RetryStrategy(max_attempts=9, exponential_wait=2)


def defer(
    task: Task[Any, Any, Any],
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_in: TimeDeltaParams | None = None,
    **task_kwargs: Any,
) -> None:
    """Queue ``task`` in the current transaction: it is lost with a rollback, kept with a commit.

    ``lock``: jobs with the same lock never run at the same time, in deferral order.
    ``queueing_lock``: at most one job with it waiting; another defer raises
    ``procrastinate.exceptions.AlreadyEnqueued``. ``schedule_in``: e.g. ``{"minutes": 5}``.
    """
    if not apps.is_installed("procrastinate.contrib.django"):
        # The SQLite demo has no queue (Procrastinate's schema is PostgreSQL's own).
        transaction.on_commit(lambda: _run_in_process(task, task_kwargs))
        return
    task.configure(lock=lock, queueing_lock=queueing_lock, schedule_in=schedule_in).defer(
        **task_kwargs
    )


def _run_in_process(task: Task[Any, Any, Any], task_kwargs: dict[str, Any]) -> None:
    job = Job(queue=task.queue, lock=None, queueing_lock=None, task_name=task.name)
    context = JobContext(app=app, job=job, start_timestamp=time.time(), abort_reason=lambda: None)
    try:
        task.func(*([context] if task.pass_context else []), **task_kwargs)
    except Exception:
        logger.exception("Job %s failed (SQLite demo: no retry)", task.name)


@app.periodic(cron="* * * * *")
@app.task(name="core.retry_stalled_jobs", queueing_lock="core.retry_stalled_jobs")
async def retry_stalled_jobs(timestamp: int) -> None:
    """Run again the jobs of workers whose heartbeat stopped (killed, machine lost)."""
    stalled = await app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.JOBS_STALLED_AFTER.total_seconds()
    )
    for job in stalled:
        logger.warning("Retrying job %s (%s) of a stalled worker", job.id, job.task_name)
        await app.job_manager.retry_job(job)


@app.periodic(cron="43 4 * * *")
@app.task(name="core.remove_old_jobs", queueing_lock="core.remove_old_jobs")
async def remove_old_jobs(timestamp: int) -> None:
    """Forget jobs that succeeded over a week ago; failed ones stay for an operator to see."""
    await app.job_manager.delete_old_jobs(nb_hours=7 * 24)
