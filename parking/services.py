"""Workflows that change parking sessions. Each runs in one transaction and takes ``now``.

State changes are conditional UPDATEs (``WHERE state = …``), so two requests racing on the
same session cannot both succeed; the database constraints back every invariant up.
"""

import uuid
from datetime import datetime
from functools import partial

from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from accounts.models import User
from parking.exceptions import (
    NoTriesLeft,
    OpenSessionExists,
    ParkingError,
    ParkingUnavailable,
    SessionStateError,
)
from parking.models import (
    OPEN_STATES,
    AuditAction,
    Operator,
    OperatorMembership,
    ParkingSession,
    SecuredParking,
    SessionAuditEntry,
    State,
    Tariff,
)
from smart_keys.exceptions import (
    BarrierGatewayError,
    BarrierGatewayNotConfigured,
    BarrierGatewayTimeout,
    BarrierGatewayUnreachable,
)
from smart_keys.gateway import OpenRequest, request_barrier_open
from smart_keys.models import AccessEvent, AccessPoint, AccessResult, BarrierGateway, Direction
from smart_keys.services import (
    direction_of,
    expire_key,
    issue_session_key,
    record_access,
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
            session = ParkingSession.objects.create(
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
    # Only now: a signed command names its session.
    refresh_access_command(smart_key_id=smart_key.pk, now=now)
    return session


def spend_entrance_try(*, session: ParkingSession, now: datetime) -> None:
    """Spend one entrance try and issue a fresh access command for the entrance barriers."""
    _spend_try(session, now, event=AccessEvent.ENTRANCE_TRY, required_state=State.ENTERING)


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


def spend_exit_try(*, session: ParkingSession, now: datetime) -> None:
    """Spend one exit try and issue a fresh access command for the exit barriers."""
    _spend_try(session, now, event=AccessEvent.EXIT_TRY, required_state=State.EXITING)


def open_barrier(
    *, session: ParkingSession, access_point: AccessPoint | None, now: datetime
) -> None:
    """Online parkings: spend a try (entrance or exit, by the session's state) and have the
    parking's barrier gateway open the barrier (``access_point``, or the key's barriers).

    The gateway is called after the try's transaction committed, so a slow gateway holds no
    row lock; when it does not confirm, the try is given back and the failure raised."""
    direction = direction_of(session)
    log = partial(
        record_access,
        session=session,
        event=AccessEvent.OPEN_REQUEST,
        direction=direction,
        access_point=access_point,
        now=now,
    )
    try:
        gateway, request = _spend_try_for_open_request(session, access_point, direction, now)
    except ParkingError as refusal:
        log(result=AccessResult.REFUSED, detail=refusal.message)
        raise
    try:
        request_barrier_open(gateway=gateway, request=request)
    except Exception as failure:
        # No confirmed opening (whatever went wrong): the driver did not get through, so
        # the try is theirs again, in one SQL increment.
        tries_field = TRIES_FIELDS[direction]
        ParkingSession.objects.filter(pk=session.pk).update(**{tries_field: F(tries_field) + 1})
        result = GATEWAY_RESULTS.get(getattr(failure, "code", ""), AccessResult.GATEWAY_ERROR)
        log(result=result, detail=f"{failure} Request {request.request_id}.")
        raise
    log(result=AccessResult.OPENED, detail=f"Request {request.request_id}")


TRIES_FIELDS = {
    Direction.ENTRANCE: "entrance_remaining_tries",
    Direction.EXIT: "exit_remaining_tries",
}
GATEWAY_RESULTS = {
    BarrierGatewayError.code: AccessResult.GATEWAY_ERROR,
    BarrierGatewayTimeout.code: AccessResult.GATEWAY_TIMEOUT,
    BarrierGatewayUnreachable.code: AccessResult.GATEWAY_UNREACHABLE,
}


def _spend_try(
    session: ParkingSession, now: datetime, *, event: AccessEvent, required_state: State
) -> None:
    direction = Direction.ENTRANCE if required_state == State.ENTERING else Direction.EXIT
    tries_field = TRIES_FIELDS[direction]
    log = partial(record_access, session=session, event=event, direction=direction, now=now)
    try:
        with transaction.atomic():
            _update_open_session(
                session,
                now,
                action=f"try the {direction.value} of",
                required_state=required_state,
                tries_field=tries_field,
                **{tries_field: F(tries_field) - 1},
            )
            log(result=AccessResult.GRANTED)
            refresh_access_command(smart_key_id=session.smart_key_id, now=now)
    except SessionStateError as refusal:
        # Logged outside the rolled-back transaction, so the refusal stays on record.
        log(result=AccessResult.REFUSED, detail=refusal.message)
        raise


@transaction.atomic
def _spend_try_for_open_request(
    session: ParkingSession, access_point: AccessPoint | None, direction: Direction, now: datetime
) -> tuple[BarrierGateway, OpenRequest]:
    gateway = BarrierGateway.objects.filter(
        secured_parking_id=session.secured_parking_id, is_enabled=True
    ).first()
    if gateway is None:
        raise BarrierGatewayNotConfigured(
            "This parking's barriers are not opened by the backend; use the access command."
        )
    tries_field = TRIES_FIELDS[direction]
    _update_open_session(
        session,
        now,
        action=f"open the {direction.value} barrier of",
        required_state=State.ENTERING if direction == Direction.ENTRANCE else State.EXITING,
        tries_field=tries_field,
        **{tries_field: F(tries_field) - 1},
    )
    access_points = [access_point] if access_point else session.smart_key.access_points.all()
    return gateway, OpenRequest(
        request_id=str(uuid.uuid4()),
        secured_parking_id=session.secured_parking_id,
        parking_session_id=session.pk,
        smart_key_id=session.smart_key_id,
        direction=direction.value,
        access_points=tuple(sorted(ap.mac_address for ap in access_points)),
    )


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


# Back office. Operator staff act on a driver's session through the driver's own workflows
# above, so the same state guards hold, and every action leaves an audit entry.

MAX_GRANTED_TRIES = 10
AUDITED_FIELDS = ("state", "amount", "entrance_remaining_tries", "exit_remaining_tries")


@transaction.atomic
def finalize_by_operator(
    *, session: ParkingSession, actor: User, reason: str, now: datetime
) -> ParkingSession:
    """Close a session the driver cannot close (app died at the exit, barrier lifted by hand).

    From ``active`` the amount is fixed now, exactly as if the driver had asked to exit, and
    the session is finalized; from ``exiting`` it is finalized with the amount fixed at exit.
    ``entering`` is refused: the driver never parked, so cancel it instead.
    """
    reason = _required_reason(reason)
    locked = _lock_in_states(session, now, action="finalize", states=(State.ACTIVE, State.EXITING))
    if locked.state == State.ACTIVE:
        request_exit(session=locked, now=now)
    finalize_parking_session(session=locked, now=now)
    return _audited(locked, actor=actor, action=AuditAction.FINALIZE, reason=reason, now=now)


@transaction.atomic
def cancel_by_operator(
    *, session: ParkingSession, actor: User, reason: str, now: datetime
) -> ParkingSession:
    """Call a session off for the driver: it ends now, nothing is due, the key stops working.

    Allowed from ``entering`` (the driver gave up at the gate) and from ``active`` (the car
    never really got in, or the operator waives the stay). Refused from ``exiting``: the
    amount is fixed and shown to the driver, so finalize it. Closed sessions are refused.
    """
    reason = _required_reason(reason)
    locked = _lock_in_states(session, now, action="cancel", states=(State.ENTERING, State.ACTIVE))
    if locked.state == State.ENTERING:
        cancel_parking_session(session=locked, now=now)
    else:
        _update_open_session(
            locked, now, action="cancel", required_state=State.ACTIVE,
            state=State.CANCELLED, end_time=now, amount=0,
        )  # fmt: skip
        expire_key(smart_key_id=locked.smart_key_id, now=now)
    return _audited(locked, actor=actor, action=AuditAction.CANCEL, reason=reason, now=now)


@transaction.atomic
def grant_extra_tries(
    *,
    session: ParkingSession,
    actor: User,
    entrance_tries: int,
    exit_tries: int,
    reason: str,
    now: datetime,
) -> ParkingSession:
    """Give a driver stuck at a barrier more attempts, while the session is open."""
    reason = _required_reason(reason)
    if not (0 <= entrance_tries <= MAX_GRANTED_TRIES and 0 <= exit_tries <= MAX_GRANTED_TRIES):
        raise ValueError(f"Grant between 0 and {MAX_GRANTED_TRIES} tries of each kind.")
    if not entrance_tries and not exit_tries:
        raise ValueError("Grant at least one try.")
    locked = _lock_in_states(session, now, action="grant tries to", states=tuple(OPEN_STATES))
    # Added in SQL to what the row holds, not to the copy the operator's page read.
    ParkingSession.objects.filter(pk=locked.pk).update(
        entrance_remaining_tries=F("entrance_remaining_tries") + entrance_tries,
        exit_remaining_tries=F("exit_remaining_tries") + exit_tries,
        updated_at=now,
    )
    return _audited(
        locked,
        actor=actor,
        action=AuditAction.GRANT_TRIES,
        reason=reason,
        now=now,
        extra={"entrance_tries_granted": entrance_tries, "exit_tries_granted": exit_tries},
    )


def _required_reason(reason: str) -> str:
    # The form asks for it too; this keeps a script or a shell from skipping the "why".
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is required.")
    return reason


def _lock_in_states(
    session: ParkingSession, now: datetime, *, action: str, states: tuple[State, ...]
) -> ParkingSession:
    """The session's row, locked until commit, if its state allows the action."""
    # Locked, so a driver's request cannot move it between this check and the update.
    locked = ParkingSession.objects.select_for_update().get(pk=session.pk)
    state = locked.effective_state(now)
    if locked.is_stale(now):
        raise SessionStateError(
            "The session expired: the driver did not enter in time, so it counts as cancelled.",
            state=state,
        )
    if state not in states:
        allowed = " or ".join(states)
        raise SessionStateError(
            f"Cannot {action} a session that is {state}; it must be {allowed}.", state=state
        )
    return locked


def _audited(
    before: ParkingSession,
    *,
    actor: User,
    action: AuditAction,
    reason: str,
    now: datetime,
    extra: dict | None = None,
) -> ParkingSession:
    after = ParkingSession.objects.get(pk=before.pk)
    # [before, after] of what the back office can change, so the trail reads on its own.
    details = {field: [getattr(before, field), getattr(after, field)] for field in AUDITED_FIELDS}
    details.update(extra or {})
    SessionAuditEntry.objects.create(
        session=after, actor=actor, action=action, reason=reason, details=details, created_at=now
    )
    return after


# Operator staff: a membership says which operator's parkings they run; the group gives
# them the model permissions to do it. The admin narrows every list to their operator.

OPERATOR_STAFF_GROUP = "Operator staff"
OPERATOR_STAFF_PERMISSIONS = {
    "parking": [
        "view_securedparking",
        "add_securedparking",
        "change_securedparking",
        "view_tariff",
        "add_tariff",
        "change_tariff",
        "view_parkingsession",
        "operate_parkingsession",
        "view_sessionauditentry",
    ],
    "smart_keys": [
        "view_accesspoint",
        "add_accesspoint",
        "change_accesspoint",
        "delete_accesspoint",
        "view_smartkey",
        "view_accesslogentry",
        # Key pairs are read-only in the admin; "change" is what its rotate action asks for.
        "view_parkingkeypair",
        "change_parkingkeypair",
        "view_barriergateway",
        "add_barriergateway",
        "change_barriergateway",
    ],
}


@transaction.atomic
def add_operator_staff(*, user: User, operator: Operator) -> OperatorMembership:
    """Let ``user`` run ``operator``'s parkings in the back office, and nothing else."""
    membership, _created = OperatorMembership.objects.get_or_create(user=user, operator=operator)
    if not user.is_staff:
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.is_staff = True
    user.groups.add(sync_operator_staff_group())
    return membership


def sync_operator_staff_group() -> Group:
    """The operator staff group, with exactly ``OPERATOR_STAFF_PERMISSIONS``.

    Permissions of models that are not migrated yet are skipped; the next call adds them.
    """
    group, _created = Group.objects.get_or_create(name=OPERATOR_STAFF_GROUP)
    wanted = Q(pk__in=[])
    for app_label, codenames in OPERATOR_STAFF_PERMISSIONS.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    group.permissions.set(Permission.objects.filter(wanted))
    return group


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
