"""Operator staff acting on a driver's session. They go through the driver's own workflows
(parking.services.sessions), so the same state guards hold, and every action leaves an
audit entry."""

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from parking.exceptions import SessionStateError
from parking.models import AuditAction, ParkingSession, SessionAuditEntry, State
from parking.services.accounts import AccountDeletion, delete_driver_account
from parking.services.paying import refund_session
from parking.services.sessions import (
    STALE,
    call_off,
    cancel_parking_session,
    finalize_parking_session,
    reloaded,
    request_exit,
)
from payments.models import Refund

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

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
    before = _lock_in_states(
        session,
        now,
        states=(State.ACTIVE, State.EXITING),
        wrong_state=_("Cannot finalize a session that is {state}; it must be active or exiting."),
    )
    audited = _audited_fields(before)
    exiting = request_exit(session=before, now=now) if before.state == State.ACTIVE else before
    after = finalize_parking_session(session=exiting, now=now)
    return _audited(
        audited, after, actor=actor, action=AuditAction.FINALIZE, reason=reason, now=now
    )


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
    before = _lock_in_states(
        session,
        now,
        states=(State.ENTERING, State.ACTIVE),
        wrong_state=_("Cannot cancel a session that is {state}; it must be entering or active."),
    )
    audited = _audited_fields(before)
    if before.state == State.ENTERING:
        after = cancel_parking_session(session=before, now=now)
    else:
        after = call_off(
            before,
            now,
            required_state=State.ACTIVE,
            wrong_state=_("Cannot cancel a session that is {state}; it must be active."),
        )
    return _audited(audited, after, actor=actor, action=AuditAction.CANCEL, reason=reason, now=now)


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
    before = _lock_in_states(
        session,
        now,
        states=(State.ENTERING, State.ACTIVE, State.EXITING),
        wrong_state=_(
            "Cannot grant tries to a session that is {state}; "
            "it must be entering or active or exiting."
        ),
    )
    # Added in SQL to what the row holds, not to the copy the operator's page read.
    ParkingSession.objects.filter(pk=before.pk).update(
        entrance_remaining_tries=F("entrance_remaining_tries") + entrance_tries,
        exit_remaining_tries=F("exit_remaining_tries") + exit_tries,
        updated_at=now,
    )
    return _audited(
        _audited_fields(before),
        reloaded(before),
        actor=actor,
        action=AuditAction.GRANT_TRIES,
        reason=reason,
        now=now,
        extra={"entrance_tries_granted": entrance_tries, "exit_tries_granted": exit_tries},
    )


def refund_by_operator(
    *, session: ParkingSession, actor: User, amount: Decimal | None, reason: str, now: datetime
) -> list[Refund]:
    """Give back ``amount`` of what a finished session paid (all that is left when ``None``),
    through the payments' one refund service, and audit it with what each refund became.

    Not one transaction: the payment's row is locked only while the refund is claimed and
    while each refund made is recorded, never while Stripe is asked."""
    reason = _required_reason(reason)
    before = _audited_fields(reloaded(session))
    refunds = refund_session(session=session, amount=amount, reason=reason, actor=actor, now=now)
    after = reloaded(session)
    _audited(
        before,
        after,
        actor=actor,
        action=AuditAction.REFUND,
        reason=reason,
        now=now,
        extra={
            "refunds": [
                f"#{refund.pk} {refund.amount} {refund.state}"
                f"{' ' + refund.provider_reference if refund.provider_reference else ''}"
                for refund in refunds
            ]
        },
    )
    return refunds


@transaction.atomic
def delete_account_by_operator(
    *, driver: User, actor: User, reason: str, now: datetime
) -> AccountDeletion:
    """Carry out a deletion request the driver made outside the app (by email, at the
    desk): the API's deletion, with the same refusals, and an audit entry that names the
    account by its id only, since it outlives the account."""
    reason = _required_reason(reason)
    deletion = delete_driver_account(driver=driver, now=now)
    SessionAuditEntry.objects.create(
        session=None,
        actor=actor,
        action=AuditAction.DELETE_ACCOUNT,
        reason=reason,
        details={
            "account_id": deletion.account_id,
            "revoked_tokens": deletion.revoked_tokens,
            **asdict(deletion.anonymised),
        },
        created_at=now,
    )
    return deletion


def _required_reason(reason: str) -> str:
    # The form asks for it too; this keeps a script or a shell from skipping the "why".
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is required.")
    return reason


def _lock_in_states(
    session: ParkingSession,
    now: datetime,
    *,
    states: tuple[State, ...],
    wrong_state: "StrOrPromise",
) -> ParkingSession:
    """The session's row, locked until commit, if its state is one of ``states``."""
    # Locked, so a driver's request cannot move it between this check and the update.
    locked = ParkingSession.objects.select_for_update().get(pk=session.pk)
    state = locked.effective_state(now)
    if locked.is_stale(now):
        raise SessionStateError(STALE, state=state)
    if state not in states:
        raise SessionStateError(format_lazy(wrong_state, state=state), state=state)
    return locked


def _audited_fields(session: ParkingSession) -> dict[str, object]:
    return {field: getattr(session, field) for field in AUDITED_FIELDS}


def _audited(
    before: dict[str, object],
    after: ParkingSession,
    *,
    actor: User,
    action: AuditAction,
    reason: str,
    now: datetime,
    extra: dict[str, object] | None = None,
) -> ParkingSession:
    # [before, after] of what the back office can change, so the trail reads on its own.
    details: dict[str, object] = {
        field: [before[field], getattr(after, field)] for field in AUDITED_FIELDS
    }
    details.update(extra or {})
    SessionAuditEntry.objects.create(
        session=after, actor=actor, action=action, reason=reason, details=details, created_at=now
    )
    return after
