"""The parking app's background jobs (core.jobs; README, "Background jobs")."""

from datetime import datetime
from typing import NamedTuple

from django.utils import timezone
from procrastinate.contrib.django import app

from accounts.services import purge_used_authorization_codes
from parking.idempotency import purge_expired_records
from parking.services.accounts import anonymise_old_personal_data
from parking.services.occupancy import recount_occupancy
from parking.services.sessions import cancel_stale_entering_sessions


class Cleanup(NamedTuple):
    cancelled_sessions: int
    purged_idempotency_records: int
    purged_authorization_codes: int


def clean_up_parking(*, now: datetime) -> Cleanup:
    """Write down stale entering sessions as cancelled and forget records past retention.

    Reads never depend on it having run; it keeps the tables tidy."""
    return Cleanup(
        cancelled_sessions=cancel_stale_entering_sessions(now=now),
        purged_idempotency_records=purge_expired_records(now=now),
        purged_authorization_codes=purge_used_authorization_codes(now=now),
    )


# A run that overlaps the next one (a slow database) makes the next one wait, not pile up.
@app.periodic(cron="*/5 * * * *")
@app.task(name="parking.clean_up", queueing_lock="parking.clean_up", lock="parking.clean_up")
def clean_up_parking_job(timestamp: int) -> None:
    clean_up_parking(now=timezone.now())


# Daily: the retention is counted in days, and one run a day keeps each UPDATE small.
@app.periodic(cron="29 2 * * *")
@app.task(
    name="parking.anonymise_old_personal_data",
    queueing_lock="parking.anonymise_old_personal_data",
    lock="parking.anonymise_old_personal_data",
)
def anonymise_old_personal_data_job(timestamp: int) -> None:
    anonymise_old_personal_data(now=timezone.now())


# Hourly: the counters move with every state change, so a drift can only come from a write
# that bypassed the services (a script, a hand-made fix); one pass reads every parking's
# counter and parked sessions in a single statement.
@app.periodic(cron="11 * * * *")
@app.task(
    name="parking.recount_occupancy",
    queueing_lock="parking.recount_occupancy",
    lock="parking.recount_occupancy",
)
def recount_occupancy_job(timestamp: int) -> None:
    recount_occupancy()
