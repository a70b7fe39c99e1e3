"""The SQLite demo has no job queue (Procrastinate's schema is PostgreSQL's own): a deferred job
runs in the web process once the change commits (README, "Background jobs"). On PostgreSQL the
same calls queue jobs for the worker (tests/test_jobs.py)."""

import pytest
from django.db import connection, transaction
from procrastinate import JobContext
from procrastinate.contrib.django import app

from core.jobs import defer
from parking.models import Operator
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db

ran: list[str] = []


@pytest.fixture(autouse=True)
def on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite demo's fallback; `make test` runs this file on SQLite")
    ran.clear()


@app.task(name="tests.sqlite.note")
def note(*, key: str) -> None:
    ran.append(key)


@app.task(name="tests.sqlite.fail", pass_context=True)
def fail(context: JobContext, *, key: str) -> None:
    ran.append(f"{key}, attempt {context.job.attempts}")
    raise RuntimeError("the other system did not answer")


def test_a_job_runs_after_the_commit_and_not_after_a_rollback(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            OperatorFactory(name="Rolled back")
            defer(note, key="rolled back")
            raise RuntimeError("the change failed")
        with transaction.atomic():
            OperatorFactory(name="Committed")
            defer(note, key="committed")
            assert ran == []

    assert ran == ["committed"]
    assert list(Operator.objects.values_list("name", flat=True)) == ["Committed"]


def test_a_failing_job_is_logged_and_does_not_fail_the_request(
    django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        defer(fail, key="flaky")

    assert ran == ["flaky, attempt 0"]
    assert "Job tests.sqlite.fail failed (SQLite demo: no retry)" in caplog.text
