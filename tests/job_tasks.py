"""Tasks the job tests defer. Each run is written down in ``test_job_runs`` (key, attempt,
worker pid, start and end) on its own connection, so a run shows even if its job is killed."""

import os
import time

from django.db import connection, transaction
from procrastinate import JobContext
from procrastinate.contrib.django import app

from core.jobs import BACKOFF

RUNS_TABLE = """
    CREATE TABLE IF NOT EXISTS test_job_runs (
        id serial PRIMARY KEY, key text NOT NULL, attempt int NOT NULL, pid int NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz
    );
    CREATE TABLE IF NOT EXISTS test_job_effects (key text PRIMARY KEY, pid int NOT NULL);
"""


def _start_run(key: str, attempt: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_job_runs (key, attempt, pid) VALUES (%s, %s, %s) RETURNING id",
            [key, attempt, os.getpid()],
        )
        return cursor.fetchone()[0]


def _end_run(run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE test_job_runs SET ended_at = clock_timestamp() WHERE id = %s", [run_id]
        )


@app.task(name="tests.record", pass_context=True)
def record(context: JobContext, *, key: str, seconds: float = 0) -> None:
    run_id = _start_run(key, context.job.attempts)
    time.sleep(seconds)
    _end_run(run_id)


@app.task(name="tests.fail_twice", pass_context=True, retry=BACKOFF)
def fail_twice(context: JobContext, *, key: str) -> None:
    _start_run(key, context.job.attempts)
    if context.job.attempts < 2:
        raise RuntimeError("the other system did not answer")


@app.task(name="tests.apply_effect_then_hang", pass_context=True)
def apply_effect_then_hang(context: JobContext, *, key: str) -> None:
    """The pattern for effects that must happen once: keyed by the job's arguments (never by
    the attempt) and applied with a unique row in a transaction of their own."""
    _start_run(key, context.job.attempts)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO test_job_effects (key, pid) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [key, os.getpid()],
            )
    if context.job.attempts == 0:
        time.sleep(600)  # the test kills the worker here, after the effect, before the job ends
