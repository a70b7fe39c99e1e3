"""Workflows that change parking sessions. Each runs in one transaction and takes ``now``.

State changes are conditional UPDATEs (``WHERE state = …``), so two requests racing on the
same session cannot both succeed; the database constraints back every invariant up.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import User
from parking.exceptions import NoTriesLeft, OpenSessionExists, ParkingUnavailable, SessionStateError
from parking.models import ParkingSession, SecuredParking, State, Tariff
from smart_keys.services import (
    expire_key,
    issue_session_key,
    refresh_access_command,
    switch_key_to_exit,
)


@transaction.atomic
def start_parking_session(
    *, driver: User, secured_parking: SecuredParking, now: datetime
) -> ParkingSession:
    """Open a pay-per-use session in ``entering`` with a key for the entrance barriers."""
    # Lock the parking row: starts at one parking queue up, so capacity is never overbooked.
    parking = SecuredParking.objects.select_for_update().get(pk=secured_parking.pk)
    _ensure_accepts_sessions(parking)
    _cancel_stale_entering_sessions(driver=driver, now=now)
    _ensure_no_open_session(driver=driver, now=now)
    if ParkingSession.objects.filter(secured_parking=parking).open(now).count() >= parking.capacity:
        raise ParkingUnavailable(f"{parking.name} is full.", secured_parking_id=parking.pk)
    smart_key = issue_session_key(driver=driver, secured_parking=parking, now=now)
    try:
        with transaction.atomic():
            return ParkingSession.objects.create(
                driver=driver,
                secured_parking=parking,
                smart_key=smart_key,
                state=State.ENTERING,
                start_time=now,
                entrance_remaining_tries=parking.entrance_tries,
                exit_remaining_tries=parking.exit_tries,
                currency=parking.currency,
            )
    except IntegrityError:
        # A parallel start at another parking won the one-open-session constraint.
        _ensure_no_open_session(driver=driver, now=now)
        raise


@transaction.atomic
def spend_entrance_try(*, session: ParkingSession, now: datetime) -> None:
    """Spend one entrance try and issue a fresh access command for the entrance barriers."""
    _update_open_session(
        session,
        now,
        action="try the entrance of",
        required_state=State.ENTERING,
        tries_field="entrance_remaining_tries",
        entrance_remaining_tries=F("entrance_remaining_tries") - 1,
    )
    refresh_access_command(smart_key_id=session.smart_key_id, now=now)


@transaction.atomic
def confirm_entrance(*, session: ParkingSession, now: datetime) -> None:
    """The entrance barrier opened: the driver is parked."""
    _update_open_session(
        session, now, action="enter with", required_state=State.ENTERING, state=State.ACTIVE
    )


@transaction.atomic
def request_exit(*, session: ParkingSession, now: datetime) -> None:
    """Fix the amount due now and turn the key towards the exit barriers."""
    _update_open_session(
        session,
        now,
        action="exit with",
        required_state=State.ACTIVE,
        state=State.EXITING,
        amount=session.amount_due(now),
    )
    switch_key_to_exit(smart_key_id=session.smart_key_id, now=now)


@transaction.atomic
def spend_exit_try(*, session: ParkingSession, now: datetime) -> None:
    """Spend one exit try and issue a fresh access command for the exit barriers."""
    _update_open_session(
        session,
        now,
        action="try the exit of",
        required_state=State.EXITING,
        tries_field="exit_remaining_tries",
        exit_remaining_tries=F("exit_remaining_tries") - 1,
    )
    refresh_access_command(smart_key_id=session.smart_key_id, now=now)


@transaction.atomic
def finalize_parking_session(*, session: ParkingSession, now: datetime) -> None:
    """The driver is out: close the session with the amount fixed at exit."""
    _update_open_session(
        session, now, action="finalize", required_state=State.EXITING,
        state=State.FINISHED, end_time=now,
    )  # fmt: skip
    expire_key(smart_key_id=session.smart_key_id, now=now)


@transaction.atomic
def cancel_parking_session(*, session: ParkingSession, now: datetime) -> None:
    """The driver gives up before getting in: nothing is due."""
    _update_open_session(
        session, now, action="cancel", required_state=State.ENTERING,
        state=State.CANCELLED, end_time=now, amount=0,
    )  # fmt: skip
    expire_key(smart_key_id=session.smart_key_id, now=now)


def cancel_stale_entering_sessions(*, now: datetime) -> int:
    """Write down the cancellation of sessions left in ``entering`` past the deadline.

    Reads already treat them as cancelled; this only tidies the rows (and frees the
    one-open-session slot for drivers who never come back)."""
    return ParkingSession.objects.stale_entering(now).update(
        state=State.CANCELLED, end_time=F("start_time"), amount=0, updated_at=now
    )


def _ensure_accepts_sessions(parking: SecuredParking) -> None:
    if not parking.is_active:
        raise ParkingUnavailable(
            f"{parking.name} is not accepting parking sessions.", secured_parking_id=parking.pk
        )
    if not Tariff.objects.filter(secured_parking=parking).exists():
        raise ParkingUnavailable(
            f"{parking.name} has no tariff yet.", secured_parking_id=parking.pk
        )


def _cancel_stale_entering_sessions(*, driver: User, now: datetime) -> None:
    ParkingSession.objects.for_driver(driver).stale_entering(now).update(
        state=State.CANCELLED, end_time=F("start_time"), amount=0, updated_at=now
    )


def _ensure_no_open_session(*, driver: User, now: datetime) -> None:
    open_session = ParkingSession.objects.for_driver(driver).open(now).first()
    if open_session is not None:
        raise OpenSessionExists(
            f"You already have an open parking session (#{open_session.pk}, "
            f"{open_session.state}); finish or cancel it first.",
            parking_session_id=open_session.pk,
        )


def _update_open_session(
    session: ParkingSession,
    now: datetime,
    *,
    action: str,
    required_state: State,
    tries_field: str | None = None,
    **changes: object,
) -> None:
    conditions = {"pk": session.pk, "state": required_state}
    if tries_field:
        conditions[f"{tries_field}__gt"] = 0
    updated = (
        ParkingSession.objects.open(now).filter(**conditions).update(updated_at=now, **changes)
    )
    if not updated:
        raise _refusal(session.pk, now, action=action, required_state=required_state)


def _refusal(
    session_id: int, now: datetime, *, action: str, required_state: State
) -> SessionStateError:
    """Explain, from the row as it is now, why a conditional update matched nothing."""
    session = ParkingSession.objects.get(pk=session_id)
    state = session.effective_state(now)
    if session.is_stale(now):
        return SessionStateError(
            "The session expired: the driver did not enter in time, so it counts as cancelled.",
            state=state,
        )
    if state != required_state:
        return SessionStateError(
            f"Cannot {action} a session that is {state}; it must be {required_state}.",
            state=state,
        )
    direction = "entrance" if required_state == State.ENTERING else "exit"
    return NoTriesLeft(f"No {direction} tries left for this session.", state=state)
