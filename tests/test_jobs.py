"""Background jobs with real worker processes on PostgreSQL (README, "Background jobs")."""

import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

import core.jobs
from core.jobs import defer
from parking.models import Operator, ParkingSession, State
from parking.tasks import clean_up_parking_job
from tests.factories import OperatorFactory, ParkingSessionFactory
from tests.job_tasks import apply_effect_then_hang, fail_twice, record
from tests.jobs import defer_periodic_now, runs, statuses, wait_until

pytestmark = pytest.mark.postgres


def test_a_job_deferred_with_a_change_runs_after_the_commit_and_never_after_a_rollback(
    job_worker,
):
    worker = job_worker()
    with pytest.raises(RuntimeError), transaction.atomic():
        OperatorFactory(name="Rolled back")
        defer(record, key="rolled back")
        raise RuntimeError("the change failed")
    with transaction.atomic():
        OperatorFactory(name="Committed")
        defer(record, key="committed")
        time.sleep(1)  # the worker polls every 0.1 s: it cannot see the job before the commit
        assert runs() == []

    wait_until(lambda: runs(), what="the committed job")
    assert runs() == [("committed", 0, worker.pid)]
    assert list(Operator.objects.values_list("name", flat=True)) == ["Committed"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args->>'key' FROM procrastinate_jobs WHERE task_name = 'tests.record'"
        )
        assert cursor.fetchall() == [("committed",)]


def test_a_failing_job_is_retried_with_a_growing_wait_until_it_succeeds(job_worker):
    job_worker()
    defer(fail_twice, key="flaky")

    wait_until(lambda: statuses("tests.fail_twice") == ["succeeded"], what="the retries")
    with connection.cursor() as cursor:
        cursor.execute("SELECT attempt, started_at FROM test_job_runs ORDER BY started_at")
        (first, at_0), (second, at_1), (third, at_2) = cursor.fetchall()
    assert (first, second, third) == (0, 1, 2)
    # core.jobs.BACKOFF waits 2 s, then 4 s.
    assert timedelta(seconds=2) <= at_1 - at_0 < timedelta(seconds=4)
    assert timedelta(seconds=4) <= at_2 - at_1 < timedelta(seconds=6)


def test_two_workers_run_each_job_once(job_worker):
    workers = {job_worker(concurrency=3).pid, job_worker(concurrency=3).pid}
    keys = [f"job {n}" for n in range(40)]
    for key in keys:
        defer(record, key=key, seconds=0.05)

    wait_until(lambda: len(runs()) == 40, what="40 runs")
    time.sleep(0.5)  # a second run of any job would show by now
    done = runs()
    assert sorted(key for key, _, _ in done) == sorted(keys)
    assert {pid for _, _, pid in done} == workers  # both took jobs, none the same one


def test_jobs_with_one_lock_run_one_at_a_time_in_order_across_workers(job_worker):
    job_worker(concurrency=3)
    job_worker(concurrency=3)
    for n in range(6):
        defer(record, key=f"capture {n}", seconds=0.2, lock="payment:1")

    wait_until(lambda: statuses("tests.record") == ["succeeded"] * 6, what="6 jobs")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, started_at, ended_at FROM test_job_runs ORDER BY started_at")
        done = cursor.fetchall()
    assert [key for key, _, _ in done] == [f"capture {n}" for n in range(6)]
    for (_, _, ended), (_, started, _) in zip(done, done[1:], strict=False):
        assert ended <= started


def test_a_periodic_task_is_deferred_once_per_tick_whatever_the_workers(job_worker):
    for _ in range(2):
        job_worker(modules=["tests.job_periodic_tasks"])

    wait_until(lambda: len(runs()) >= 3, what="three ticks", timeout=10)
    ticks = [key for key, _, _ in runs()]
    assert len(ticks) == len(set(ticks))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT args->>'timestamp') FROM procrastinate_jobs "
            "WHERE task_name = 'tests.every_second'"
        )
        jobs, timestamps = cursor.fetchone()
    assert jobs == timestamps >= 3


def test_the_cron_jobs_of_the_project_are_periodic_tasks():
    schedules = {
        task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()
    }
    assert schedules["parking.clean_up"] == "*/5 * * * *"
    assert schedules["parking.recount_occupancy"] == "11 * * * *"
    assert schedules["accounts.clear_expired_tokens"] == "17 3 * * *"
    assert schedules["core.retry_stalled_jobs"] == "* * * * *"
    assert schedules["core.remove_old_jobs"] == "43 4 * * *"


def test_jobs_that_succeeded_over_a_week_ago_are_forgotten_and_failed_ones_kept(job_worker):
    job_worker()
    defer(record, key="will succeed")
    defer(record, key="will be marked failed")
    wait_until(lambda: statuses("tests.record") == ["succeeded"] * 2, what="two jobs")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'failed' "
            "WHERE task_name = 'tests.record' AND args->>'key' = 'will be marked failed'"
        )
        cursor.execute(
            "UPDATE procrastinate_events SET at = now() - interval '8 days' WHERE job_id IN "
            "(SELECT id FROM procrastinate_jobs WHERE task_name = 'tests.record')"
        )

    defer_periodic_now(core.jobs.remove_old_jobs)

    wait_until(lambda: statuses("tests.record") == ["failed"], what="the old job removed")


def test_the_worker_runs_the_parking_cleanup(job_worker, settings):
    stale = ParkingSessionFactory(
        state=State.ENTERING,
        start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1),
    )
    job_worker()
    defer_periodic_now(clean_up_parking_job)

    wait_until(lambda: "succeeded" in statuses("parking.clean_up"), what="the cleanup")
    assert ParkingSession.objects.get(pk=stale.pk).state == State.CANCELLED


def test_a_job_killed_mid_run_runs_again_after_recovery_and_its_effect_happens_once(job_worker):
    fast = {"JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_STALLED_AFTER_SECONDS": "2"}
    first = job_worker(env=fast)
    defer(apply_effect_then_hang, key="capture payment 7")
    wait_until(lambda: effects() == [("capture payment 7", first.pid)], what="the effect")

    first.kill()  # SIGKILL: no cleanup, the job stays "doing" with a dead worker's heartbeat
    assert statuses("tests.apply_effect_then_hang") == ["doing"]
    time.sleep(2.5)
    defer_periodic_now(core.jobs.retry_stalled_jobs)
    second = job_worker(env=fast)

    wait_until(
        lambda: statuses("tests.apply_effect_then_hang") == ["succeeded"], what="the retried job"
    )
    assert [(attempt, pid) for _, attempt, pid in runs()] == [(0, first.pid), (1, second.pid)]
    assert effects() == [("capture payment 7", first.pid)]


def effects() -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, pid FROM test_job_effects")
        return cursor.fetchall()


@pytest.mark.django_db
def test_superusers_see_the_jobs_in_the_admin(superuser_client):
    defer(record, key="shown in the admin")

    response = superuser_client.get("/admin/procrastinate/procrastinatejob/")

    assert response.status_code == 200
    assert "tests.record" in response.content.decode()
