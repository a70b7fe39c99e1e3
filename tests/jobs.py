"""Real job workers for tests: `manage.py procrastinate worker` processes on the test database
(README, "Background jobs"), and the tables the tests' tasks write to (tests/job_tasks.py)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from procrastinate.exceptions import AlreadyEnqueued

from core.jobs import defer
from tests.job_tasks import RUNS_TABLE

ROOT = Path(__file__).resolve().parent.parent
PROCRASTINATE_TABLES = "procrastinate_jobs, procrastinate_periodic_defers, procrastinate_workers"


class Worker:
    def __init__(self, log: Path, *, modules: list[str], env: dict[str, str], concurrency: int):
        self.log = log
        command = [
            sys.executable,
            *("-m", "tests.job_worker", "tests.job_tasks", *modules, "--"),
            *("--concurrency", str(concurrency), "--fetch-job-polling-interval", "0.1"),
        ]
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until(lambda: '"action":"start_worker"' in log.read_text(), what=f"worker, {log}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a graceful stop, as in production
            self.process.wait(timeout=30)


def wait_until(condition: Callable[[], object], *, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def defer_periodic_now(task, **kwargs) -> None:
    """Defer a periodic task now, to keep a test short, unless the worker's own schedule has
    just queued it: its queueing lock admits one waiting job, and either one does the work."""
    try:
        defer(task, timestamp=int(time.time()), **kwargs)
    except AlreadyEnqueued:
        pass


def runs(key: str | None = None) -> list[tuple[str, int, int]]:
    """(key, attempt, pid) of the tests' task runs, in the order they started."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, attempt, pid FROM test_job_runs WHERE %s::text IS NULL OR key = %s "
            "ORDER BY started_at, id",
            [key, key],
        )
        return cursor.fetchall()


def statuses(task_name: str) -> list[str]:
    """The status of each job of ``task_name``, in the order they were deferred."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", [task_name]
        )
        return [status for (status,) in cursor.fetchall()]


def _test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def job_worker(transactional_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Starts workers on the test database: ``job_worker(modules=[…], env={…}, concurrency=2)``.

    Data must be committed for a worker to see it, hence ``transactional_db``; the job tables
    are not Django's own (it does not flush them), so they are emptied here."""
    with connection.cursor() as cursor:
        cursor.execute(RUNS_TABLE)
        cursor.execute(f"TRUNCATE {PROCRASTINATE_TABLES}, test_job_runs, test_job_effects CASCADE")
    workers: list[Worker] = []

    def start(*, modules=(), env=None, concurrency=2) -> Worker:
        environment = {**os.environ, "DATABASE_URL": _test_database_url(), **(env or {})}
        log = tmp_path / f"worker-{len(workers) + 1}.log"
        workers.append(Worker(log, modules=list(modules), env=environment, concurrency=concurrency))
        return workers[-1]

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
