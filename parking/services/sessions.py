"""The driver's parking session, from start to finish. Each workflow runs in one
transaction, takes ``now`` and returns the session as it left it, loaded for the API's
body.

State changes are conditional UPDATEs (``WHERE state = …``), so two requests racing on the
same session cannot both succeed; the database constraints back every invariant up.
"""

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from parking.exceptions import (
    NoTriesLeft,
    OpenSessionExists,
    ParkingUnavailable,
    SessionStateError,
)
from parking.models import PARKED_STATES, ParkingSession, SecuredParking, State, Tariff
from parking.services import occupancy, paying
from parking.services.access import issue_session_command, record_access
from payments import services as payments
from payments.models import Payment
from smart_keys.models import AccessEvent, AccessPoint, AccessResult, Direction
from smart_keys.services import expire_key, issue_smart_key, point_key_at

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

STALE = _("The session expired: the driver did not enter in time, so it counts as cancelled.")
TRIES_FIELDS = {
    Direction.ENTRANCE: "entrance_remaining_tries",
    Direction.EXIT: "exit_remaining_tries",
}
NO_TRIES_LEFT = {
    Direction.ENTRANCE: _("No entrance tries left for this session."),
    Direction.EXIT: _("No exit tries left for this session."),
}


@transaction.atomic
def start_parking_session(
    *,
    driver: User,
    secured_parking: SecuredParking,
    now: datetime,
    payment: Payment | None = None,
    access_point: AccessPoint | None = None,
) -> ParkingSession:
    """Open a pay-per-use session in ``entering`` with a key for the entrance barriers, paid
    by ``payment``'s hold (paying.hold_for_start) where the parking charges by card. Its
    first command opens ``access_point`` alone when the app named the barrier it sees."""
    # Lock the driver, then the parking: a driver's starts queue up, so a parallel start
    # sees the session this one opens, and starts at one parking cannot overbook it.
    User.objects.select_for_update().filter(pk=driver.pk).values_list("pk").get()
    parking = SecuredParking.objects.select_for_update().get(pk=secured_parking.pk)
    tariff = _tariff_of_open_parking(parking)
    cancel_stale_entering_sessions(driver=driver, now=now)
    _ensure_no_open_session(driver=driver, now=now)
    paying.ensure_nothing_outstanding(driver=driver)
    # Read after the lock, in a statement of its own: it sees every start before this one.
    occupied = SecuredParking.objects.with_occupancy(now).get(pk=parking.pk).occupied_places
    if occupied >= parking.capacity:
        raise ParkingUnavailable(
            format_lazy(_("{parking} is full."), parking=parking.name),
            secured_parking_id=parking.pk,
        )
    smart_key = issue_smart_key(
        driver=driver,
        secured_parking_id=parking.pk,
        description=f"Session access to {parking.name}",
        now=now,
    )
    session = ParkingSession.objects.create(
        driver=driver,
        secured_parking=parking,
        smart_key=smart_key,
        state=State.ENTERING,
        start_time=now,
        entrance_remaining_tries=parking.entrance_tries,
        exit_remaining_tries=parking.exit_tries,
        currency=parking.currency,
        tariff_terms=tariff.terms(),
        payment=payment,
    )
    if payment is not None:
        payments.attach(payment=payment, now=now)
    # Only now: a signed command names its session.
    issue_session_command(session=session, now=now, access_point=access_point)
    return reloaded(session)


def spend_entrance_try(
    *, session: ParkingSession, now: datetime, access_point: AccessPoint | None = None
) -> ParkingSession:
    """Spend one entrance try and issue a fresh access command for the entrance barriers
    (``access_point`` alone, when given)."""
    return _spend_try(
        session,
        now,
        access_point=access_point,
        event=AccessEvent.ENTRANCE_TRY,
        direction=Direction.ENTRANCE,
        wrong_state=_("Cannot try the entrance of a session that is {state}; it must be entering."),
    )


@transaction.atomic
def confirm_entrance(*, session: ParkingSession, now: datetime) -> ParkingSession:
    """The entrance barrier opened: the driver is parked."""
    update_if_in_state(
        session,
        now,
        required_state=State.ENTERING,
        wrong_state=_("Cannot enter with a session that is {state}; it must be entering."),
        state=State.ACTIVE,
    )
    occupancy.count_car_in(secured_parking_id=session.secured_parking_id)
    return reloaded(session)


@transaction.atomic
def request_exit(
    *,
    session: ParkingSession,
    now: datetime,
    access_point: AccessPoint | None = None,
    left_at: datetime | None = None,
) -> ParkingSession:
    """Fix the amount due now, have it captured, and turn the key towards the exit barriers
    (its command opening ``access_point`` alone, when given).

    ``left_at``: the driver is already out, at that moment, as an exit barrier's record says
    (parking.services.passages): the stay is charged up to then, and no command is issued.

    The capture runs in the background (retried while the provider is down): the car is
    never kept in for it, and what a refused card leaves unpaid is owed before the next start."""
    amount = session.charge_for_stay(left_at or now)
    update_if_in_state(
        session,
        now,
        required_state=State.ACTIVE,
        wrong_state=_("Cannot exit with a session that is {state}; it must be active."),
        state=State.EXITING,
        # The stay's charge whatever state the caller's copy shows: the update only
        # succeeds on a row that is active.
        amount=amount,
        vat_rate=settings.PARKING_VAT_RATE,
    )
    if session.payment_id is not None:
        payments.fix_amount(payment_id=session.payment_id, amount=amount, now=now)
    point_key_at(smart_key=session.smart_key, direction=Direction.EXIT)
    if left_at is None:
        # Long enough to walk to the car and leave without a network (underground, say):
        # the barrier's record of the exit tells the backend when the driver left.
        issue_session_command(
            session=session,
            now=now,
            access_point=access_point,
            validity=settings.OFFLINE_EXIT_COMMAND_VALIDITY,
        )
    return reloaded(session)


def spend_exit_try(
    *, session: ParkingSession, now: datetime, access_point: AccessPoint | None = None
) -> ParkingSession:
    """Spend one exit try and issue a fresh access command for the exit barriers
    (``access_point`` alone, when given)."""
    return _spend_try(
        session,
        now,
        access_point=access_point,
        event=AccessEvent.EXIT_TRY,
        direction=Direction.EXIT,
        wrong_state=_("Cannot try the exit of a session that is {state}; it must be exiting."),
    )


@transaction.atomic
def finalize_parking_session(
    *, session: ParkingSession, now: datetime, left_at: datetime | None = None
) -> ParkingSession:
    """The driver is out (at ``left_at``, when an exit barrier's record says so, else now):
    close the session with the amount fixed at exit."""
    update_if_in_state(
        session,
        now,
        required_state=State.EXITING,
        wrong_state=_("Cannot finalize a session that is {state}; it must be exiting."),
        state=State.FINISHED,
        # A barrier clock running behind cannot end a stay before it began.
        end_time=max(left_at, session.start_time) if left_at else now,
    )
    occupancy.count_car_out(secured_parking_id=session.secured_parking_id)
    expire_key(smart_key_id=session.smart_key_id, now=now)
    return reloaded(session)


@transaction.atomic
def cancel_parking_session(*, session: ParkingSession, now: datetime) -> ParkingSession:
    """The driver gives up before getting in: nothing is due."""
    return call_off(
        session,
        now,
        required_state=State.ENTERING,
        wrong_state=_("Cannot cancel a session that is {state}; it must be entering."),
    )


def call_off(
    session: ParkingSession, now: datetime, *, required_state: State, wrong_state: "StrOrPromise"
) -> ParkingSession:
    """End the session now with nothing due; its key stops working."""
    update_if_in_state(
        session,
        now,
        required_state=required_state,
        wrong_state=wrong_state,
        state=State.CANCELLED,
        end_time=now,
        amount=0,
    )
    if required_state in PARKED_STATES:
        occupancy.count_car_out(secured_parking_id=session.secured_parking_id)
    if session.payment_id is not None:
        payments.release_holds(payment_ids=[session.payment_id], now=now)
    expire_key(smart_key_id=session.smart_key_id, now=now)
    return reloaded(session)


@transaction.atomic
def cancel_stale_entering_sessions(*, now: datetime, driver: User | None = None) -> int:
    """Write down the cancellation of sessions (``driver``'s, or everyone's) left in
    ``entering`` past the deadline, and release their holds.

    Reads already treat them as cancelled; this only tidies the rows (and frees the
    one-open-session slot for drivers who never come back)."""
    sessions = (
        ParkingSession.objects.all()
        if driver is None
        else ParkingSession.objects.for_driver(driver)
    )
    stale = sessions.stale_entering(now)
    paying.release_holds_of(stale, now=now)
    return stale.update(state=State.CANCELLED, end_time=F("start_time"), amount=0, updated_at=now)


@transaction.atomic
def reopen_parking_session(
    *, session: ParkingSession, entered_at: datetime, now: datetime
) -> ParkingSession:
    """An entrance barrier's record shows that the car of a session cancelled (or timed out
    in ``entering``) came in at ``entered_at``: the session is ``active`` again, charged
    from then, its hold kept if it is not released yet. Refused (``OpenSessionExists``)
    while the driver has another open session."""
    driver = session.driver
    assert driver is not None  # an anonymised session stays closed
    # Locked as a start locks them: a parallel start sees this session open, or this sees it.
    User.objects.select_for_update().filter(pk=driver.pk).values_list("pk").get()
    cancel_stale_entering_sessions(driver=driver, now=now)
    _ensure_no_open_session(driver=driver, now=now)
    updated = ParkingSession.objects.filter(pk=session.pk, state=State.CANCELLED).update(
        state=State.ACTIVE,
        # Never before the session began: a barrier clock running behind.
        start_time=Greatest(F("start_time"), Value(entered_at)),
        end_time=None,
        amount=0,
        updated_at=now,
    )
    if not updated:
        raise _refusal(
            session.pk,
            now,
            required_state=State.CANCELLED,
            wrong_state=_("Cannot reopen a session that is {state}; it must be cancelled."),
        )
    occupancy.count_car_in(secured_parking_id=session.secured_parking_id)
    if session.payment_id is not None:
        payments.reclaim_hold(payment_id=session.payment_id, now=now)
    return reloaded(session)


def reloaded(session: ParkingSession) -> ParkingSession:
    """The session as the database holds it now, with what the API's body reads."""
    return ParkingSession.objects.with_body().get(pk=session.pk)


def spend_try_of(
    session: ParkingSession, now: datetime, *, direction: Direction, wrong_state: "StrOrPromise"
) -> None:
    """Take one try of ``direction`` from the session, if it is in the state that allows it."""
    tries_field = TRIES_FIELDS[direction]
    update_if_in_state(
        session,
        now,
        required_state=State.ENTERING if direction == Direction.ENTRANCE else State.EXITING,
        wrong_state=wrong_state,
        tries_field=tries_field,
        **{tries_field: F(tries_field) - 1},
    )


def give_try_back(session: ParkingSession, *, direction: Direction) -> None:
    tries_field = TRIES_FIELDS[direction]
    # In SQL, onto what the row holds now.
    ParkingSession.objects.filter(pk=session.pk).update(**{tries_field: F(tries_field) + 1})


def update_if_in_state(
    session: ParkingSession,
    now: datetime,
    *,
    required_state: State,
    wrong_state: "StrOrPromise",
    tries_field: str | None = None,
    **changes: object,
) -> None:
    """Apply ``changes`` to the session's row if it is open and in ``required_state`` (and,
    with ``tries_field``, has a try left); else raise why not. ``wrong_state`` is the
    refusal when the state is another, with ``{state}`` for it."""
    conditions: dict[str, object] = {"pk": session.pk, "state": required_state}
    if tries_field:
        conditions[f"{tries_field}__gt"] = 0
    updated = (
        ParkingSession.objects.open(now).filter(**conditions).update(updated_at=now, **changes)
    )
    if not updated:
        raise _refusal(session.pk, now, required_state=required_state, wrong_state=wrong_state)
    # What the row now holds, for what follows (tries are changed in SQL, so not here).
    session.state = required_state
    for name, value in changes.items():
        if not hasattr(value, "resolve_expression"):
            setattr(session, name, value)


def _spend_try(
    session: ParkingSession,
    now: datetime,
    *,
    access_point: AccessPoint | None,
    event: AccessEvent,
    direction: Direction,
    wrong_state: "StrOrPromise",
) -> ParkingSession:
    try:
        with transaction.atomic():
            spend_try_of(session, now, direction=direction, wrong_state=wrong_state)
            record_access(
                session=session,
                event=event,
                result=AccessResult.GRANTED,
                direction=direction,
                access_point=access_point,
                now=now,
            )
            issue_session_command(session=session, now=now, access_point=access_point)
    except SessionStateError as refusal:
        # Logged outside the rolled-back transaction, so the refusal stays on record.
        record_access(
            session=session,
            event=event,
            result=AccessResult.REFUSED,
            direction=direction,
            access_point=access_point,
            now=now,
            detail=refusal.message,
        )
        raise
    return reloaded(session)


def _refusal(
    session_id: int, now: datetime, *, required_state: State, wrong_state: "StrOrPromise"
) -> SessionStateError:
    """Explain, from the row as it is now, why a conditional update matched nothing."""
    session = ParkingSession.objects.get(pk=session_id)
    state = session.effective_state(now)
    if session.is_stale(now):
        return SessionStateError(STALE, state=state)
    if state != required_state:
        return SessionStateError(format_lazy(wrong_state, state=state), state=state)
    direction = Direction.ENTRANCE if required_state == State.ENTERING else Direction.EXIT
    return NoTriesLeft(NO_TRIES_LEFT[direction], state=state)


def _tariff_of_open_parking(parking: SecuredParking) -> Tariff:
    """The tariff a start at ``parking`` agrees to, if the parking takes sessions."""
    if not parking.is_active:
        raise ParkingUnavailable(
            format_lazy(_("{parking} is not accepting parking sessions."), parking=parking.name),
            secured_parking_id=parking.pk,
        )
    tariff = Tariff.objects.filter(secured_parking=parking).first()
    if tariff is None:
        raise ParkingUnavailable(
            format_lazy(_("{parking} has no tariff yet."), parking=parking.name),
            secured_parking_id=parking.pk,
        )
    return tariff


def _ensure_no_open_session(*, driver: User, now: datetime) -> None:
    open_session = ParkingSession.objects.for_driver(driver).open(now).first()
    if open_session is not None:
        raise OpenSessionExists(
            format_lazy(
                _(
                    "You already have an open parking session (#{id}, {state}); "
                    "finish or cancel it first."
                ),
                id=open_session.pk,
                state=open_session.state,
            ),
            parking_session_id=open_session.pk,
        )
