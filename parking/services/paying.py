"""How a parking session pays, through the payments app: the hold a start places, the
capture at exit, the release when nothing will be charged, settling a debt, and refunds.
Sessions know only these calls; which provider does the work is the payments app's business."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F
from django.utils.translation import gettext as _

from accounts.models import User
from parking.models import (
    ParkingSession,
    ParkingSessionQuerySet,
    SecuredParking,
    State,
    Tariff,
)
from payments import services as payments
from payments.exceptions import NothingToPay, OutstandingBalance, PaymentNotCaptured
from payments.models import Payment, Refund


def hold_amount_for(parking: SecuredParking) -> Decimal:
    """What a start at ``parking`` holds on the card; zero where it does not charge by card."""
    if not parking.charges_by_card:
        return Decimal("0")
    if parking.hold_amount is not None:
        return parking.hold_amount
    try:
        return parking.tariff.hold_amount()
    except Tariff.DoesNotExist:
        return Decimal("0")


def hold_for_start(
    *, driver: User, parking: SecuredParking, idempotency_key: str | None, now: datetime
) -> Payment | None:
    """Place the hold a start at ``parking`` needs, before the session exists (the provider
    is called outside any transaction); ``None`` where the parking does not charge."""
    amount = hold_amount_for(parking)
    if amount <= 0:
        return None
    ensure_nothing_outstanding(driver=driver)
    return payments.hold_for_start(
        driver=driver,
        amount=amount,
        currency=parking.currency,
        idempotency_key=idempotency_key,
        description=f"Parking at {parking.name}",
        now=now,
    )


def ensure_nothing_outstanding(*, driver: User) -> None:
    owing = ParkingSession.objects.for_driver(driver).owing().select_related("payment").first()
    if owing is not None and owing.payment is not None:
        raise OutstandingBalance(
            _(
                "Parking session #%(id)s still has %(amount)s %(currency)s to pay; pay it "
                "before starting another."
            )
            % {
                "id": owing.pk,
                "amount": owing.payment.outstanding_amount,
                "currency": owing.payment.currency,
            },
            parking_session_id=owing.pk,
        )


def release_unused_hold(*, payment: Payment | None, now: datetime) -> None:
    """The start failed after its hold was placed."""
    if payment is not None:
        payments.release_unattached(payment=payment, now=now)


def release_holds_of(sessions: ParkingSessionQuerySet, *, now: datetime) -> None:
    """These sessions are being called off (in the caller's transaction)."""
    ids = [pk for pk in sessions.values_list("payment_id", flat=True) if pk is not None]
    payments.release_holds(payment_ids=ids, now=now)


def pay_outstanding(*, session: ParkingSession, now: datetime) -> Payment:
    """The driver settles what the session's capture could not take."""
    if session.payment_id is None or session.state != State.FINISHED:
        raise NothingToPay(_("This parking session has nothing left to pay."))
    payment = Payment.objects.get(pk=session.payment_id)
    return payments.settle(payment=payment, now=now)


def refund_session(
    *,
    session: ParkingSession,
    amount: Decimal | None,
    reason: str,
    actor: User | None,
    now: datetime,
) -> list[Refund]:
    """Give back ``amount`` of what a finished session paid (all that is left when ``None``):
    payments' refund, whose every refund made lowers the session's amount
    (:func:`lower_amount_by_refund`)."""
    if session.payment_id is None or session.state != State.FINISHED:
        raise PaymentNotCaptured(_("Only a finished session paid by card can be refunded."))
    payment = Payment.objects.get(pk=session.payment_id)
    return payments.refund(payment=payment, amount=amount, reason=reason, actor=actor, now=now)


def lower_amount_by_refund(*, refund: Refund, now: datetime, **signal: Any) -> None:
    """A session says what its payment kept: captured less refunded. Called in the refund's
    transaction (payments.signals.refund_recorded), however the refund came: the back office,
    its retry job, or a refund made in Stripe's dashboard."""
    # In SQL: two refunds in a row each take their own amount off; amount_not_negative holds.
    ParkingSession.objects.filter(payment=refund.payment_id).update(
        amount=F("amount") - refund.amount, updated_at=now
    )
