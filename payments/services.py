"""Payment workflows: saving cards, the hold placed at a start, the capture after exit, the
release of a hold nobody will use, settling a debt. Provider calls happen outside database
transactions (short timeouts); state changes are conditional UPDATEs, so a retry or a second
worker finds the work done; jobs are deferred in the transaction of the change needing them."""

import time
import uuid
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from accounts.models import User
from core.jobs import defer
from payments.exceptions import (
    NothingToPay,
    PaymentDeclined,
    PaymentInProgress,
    PaymentMethodRequired,
    PaymentNotCaptured,
    PaymentProviderUnavailable,
    PaymentRequiresAction,
    RefundExceedsRefundable,
)
from payments.models import (
    SETTLED_STATES,
    Card,
    CardSetup,
    Payment,
    PaymentEvent,
    PaymentEventKind,
    PaymentState,
    ProviderCustomer,
    ProviderEvent,
    Refund,
    RefundState,
)
from payments.providers import (
    CardSetupStart,
    Hold,
    HoldStatus,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    provider,
)
from payments.signals import refund_recorded

# Provider events that may tell of a refund made elsewhere (Stripe's dashboard).
REFUND_EVENTS = ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated")


def unavailable() -> PaymentProviderUnavailable:
    return PaymentProviderUnavailable(
        _("The payment provider cannot be reached right now; try again in a moment.")
    )


# Cards


def customer_reference(*, driver: User, now: datetime) -> str:
    """The driver's customer at the provider, created on first use."""
    name = provider().name
    customer, _created = ProviderCustomer.objects.get_or_create(
        driver=driver, provider=name, defaults={"created_at": now}
    )
    if customer.reference:
        return customer.reference
    try:
        # Keyed by our row: two parallel first uses create one customer at the provider.
        reference = provider().create_customer(
            email=driver.email, idempotency_key=f"customer-{customer.pk}"
        )
    except ProviderUnavailable as error:
        raise unavailable() from error
    ProviderCustomer.objects.filter(pk=customer.pk, reference="").update(reference=reference)
    customer.refresh_from_db()
    return customer.reference


def start_card_setup(*, driver: User, now: datetime) -> CardSetupStart:
    """A setup for the app to confirm with the provider's SDK (the card never reaches us)."""
    customer = customer_reference(driver=driver, now=now)
    try:
        setup = provider().start_card_setup(customer=customer)
    except ProviderUnavailable as error:
        raise unavailable() from error
    CardSetup.objects.create(
        driver=driver, provider=provider().name, reference=setup.reference, created_at=now
    )
    return setup


def cards_of(*, driver: User, now: datetime) -> list[Card]:
    """The driver's cards, with those of setups completed since the last look recorded first.
    When the provider cannot be reached, the cards already recorded."""
    for setup in CardSetup.objects.filter(driver=driver, is_done=False):
        try:
            _record_card_of(setup, driver=driver, now=now)
        except ProviderUnavailable:
            break
        except ProviderRefused:
            CardSetup.objects.filter(pk=setup.pk).update(is_done=True)
    return list(Card.objects.filter(driver=driver))


def _record_card_of(setup: CardSetup, *, driver: User, now: datetime) -> None:
    customer = customer_reference(driver=driver, now=now)
    saved = provider().finished_card_setup(setup=setup.reference, customer=customer)
    if saved is None:
        return
    with transaction.atomic():
        has_default = Card.objects.filter(driver=driver, is_default=True).exists()
        Card.objects.get_or_create(
            reference=saved.reference,
            defaults={
                "driver": driver,
                "provider": setup.provider,
                "brand": saved.brand,
                "last4": saved.last4,
                "exp_month": saved.exp_month,
                "exp_year": saved.exp_year,
                "is_default": not has_default,
                "created_at": now,
            },
        )
        CardSetup.objects.filter(pk=setup.pk).update(is_done=True)


def remove_card(*, card: Card) -> None:
    """Forget the card here and at the provider; the oldest other card becomes the default."""
    try:
        provider().remove_card(card=card.reference)
    except ProviderUnavailable as error:
        raise unavailable() from error
    except ProviderRefused:
        pass  # already gone there
    with transaction.atomic():
        card.delete()
        if card.is_default:
            successor = Card.objects.filter(driver=card.driver_id).first()
            if successor is not None:
                make_default(card=successor)


def forget_driver(*, driver: User) -> None:
    """The driver's account is being deleted: their customers at the provider go too, with
    the cards saved there, by a job deferred in the deletion's transaction (a rollback
    deletes nothing at the provider)."""
    customers = ProviderCustomer.objects.filter(driver=driver).exclude(reference="")
    for reference in customers.values_list("reference", flat=True):
        defer_task("payments.delete_customer", customer=reference)


def delete_customer(*, customer: str) -> None:
    try:
        provider().delete_customer(customer=customer)
    except ProviderRefused:
        pass  # already gone there


@transaction.atomic
def make_default(*, card: Card) -> Card:
    Card.objects.filter(driver=card.driver_id, is_default=True).exclude(pk=card.pk).update(
        is_default=False
    )
    Card.objects.filter(pk=card.pk).update(is_default=True)
    card.is_default = True
    return card


# The hold at a start


def hold_for_start(
    *,
    driver: User,
    amount: Decimal,
    currency: str,
    idempotency_key: str | None,
    description: str,
    now: datetime,
) -> Payment:
    """A hold of ``amount`` on the driver's default card, placed once per ``idempotency_key``.

    Raises 402-kind errors (no card, declined, authentication required) and
    ``PaymentProviderUnavailable``; then no hold is left behind. Parallel starts with one key
    place one hold: the first claims the key, the others wait for its outcome."""
    card = Card.objects.filter(driver=driver, is_default=True).first()
    if card is None:
        raise PaymentMethodRequired(_("Add a card before starting a parking session here."))
    payment, claimed = _claim(driver, idempotency_key, amount, currency, card, now)
    if not claimed:
        payment = _outcome_of(payment)
    if payment.state == PaymentState.PENDING:
        payment = _place_hold(payment, card, description, now)
    return _accepted(payment, now)


def _claim(
    driver: User,
    key: str | None,
    amount: Decimal,
    currency: str,
    card: Card,
    now: datetime,
) -> tuple[Payment, bool]:
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                driver=driver,
                provider=provider().name,
                idempotency_key=key or f"auto-{uuid.uuid4()}",
                state=PaymentState.PENDING,
                currency=currency,
                hold_amount=amount,
                card=card,
                created_at=now,
                updated_at=now,
            )
        return payment, True
    except IntegrityError:
        return Payment.objects.get(driver=driver, idempotency_key=key), False


def _outcome_of(payment: Payment) -> Payment:
    """A payment claimed by an earlier request with the same key, once that one is done with
    the provider; a retry after an outage or an authentication asks the provider again."""
    deadline = time.monotonic() + 2 * settings.STRIPE_TIMEOUT_SECONDS + 1
    while payment.state == PaymentState.PENDING and time.monotonic() < deadline:
        time.sleep(0.05)
        payment.refresh_from_db()
    if payment.state == PaymentState.PENDING:
        raise unavailable()
    if payment.state == PaymentState.UNAVAILABLE:
        # Retried under the same provider key: a hold placed by the lost call is found, not doubled.
        if Payment.objects.filter(pk=payment.pk, state=PaymentState.UNAVAILABLE).update(
            state=PaymentState.PENDING
        ):
            payment.state = PaymentState.PENDING
        else:
            return _outcome_of(Payment.objects.get(pk=payment.pk))
    if payment.state == PaymentState.REQUIRES_ACTION:
        try:
            hold = provider().hold(reference=payment.hold_reference)
        except ProviderUnavailable as error:
            raise unavailable() from error
        payment = _record_hold(payment, hold, now=payment.updated_at)
    return payment


def _place_hold(payment: Payment, card: Card, description: str, now: datetime) -> Payment:
    try:
        hold = provider().place_hold(
            customer=customer_reference(driver=_payer(payment), now=now),
            card=card.reference,
            amount=payment.hold_amount,
            currency=payment.currency,
            idempotency_key=f"payment-{payment.pk}-hold",
            description=description,
        )
    except (ProviderUnavailable, PaymentProviderUnavailable) as error:
        with transaction.atomic():
            _set_state(payment, PaymentState.UNAVAILABLE, now, failure_code="provider_unavailable")
            # The lost call may have placed a hold after all: made sure of and released later
            # unless a retry of the start takes it.
            defer_task("payments.release_unknown_hold", payment_id=payment.pk, schedule_in=60)
        raise unavailable() from error
    return _record_hold(payment, hold, now=now)


def _record_hold(payment: Payment, hold: Hold, *, now: datetime) -> Payment:
    state, kind = {
        HoldStatus.AUTHORIZED: (PaymentState.AUTHORIZED, PaymentEventKind.HOLD_PLACED),
        HoldStatus.REQUIRES_ACTION: (
            PaymentState.REQUIRES_ACTION,
            PaymentEventKind.HOLD_REQUIRES_ACTION,
        ),
    }.get(hold.status, (PaymentState.DECLINED, PaymentEventKind.HOLD_DECLINED))
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            state=state,
            hold_reference=hold.reference or payment.hold_reference,
            hold_client_secret=hold.client_secret,
            hold_placed_at=now if state == PaymentState.AUTHORIZED else None,
            failure_code=hold.failure_code,
            failure_message=hold.failure_message[:500],
            updated_at=now,
        )
        _record(payment, kind, now, amount=payment.hold_amount, reference=hold.reference)
    payment.refresh_from_db()
    return payment


def _accepted(payment: Payment, now: datetime) -> Payment:
    if payment.state == PaymentState.DECLINED:
        raise PaymentDeclined(
            _("The card was declined: %(reason)s Use another card or contact your bank.")
            % {"reason": payment.failure_message or _("no reason given.")},
            decline_code=payment.failure_code,
        )
    if payment.state == PaymentState.REQUIRES_ACTION:
        raise PaymentRequiresAction(
            _(
                "Your bank asks you to confirm this payment. Confirm it in the app, then "
                "retry the start with the same Idempotency-Key."
            ),
            client_secret=payment.hold_client_secret,
        )
    return payment


def attach(*, payment: Payment, now: datetime) -> None:
    """The session the hold was placed for exists (called in its transaction)."""
    Payment.objects.filter(pk=payment.pk).update(attached_at=now, updated_at=now)


# After the stay


def fix_amount(*, payment_id: int, amount: Decimal, now: datetime) -> None:
    """The stay's amount is known (at exit): capture it in the background, or release the
    hold of a free stay. Called in the transaction that fixes the amount."""
    state = PaymentState.CAPTURING if amount > 0 else PaymentState.RELEASING
    # A released hold is charged too: the stay was called off, then barrier records showed
    # it happened after all (a reopened session). Its capture finds the hold gone and
    # charges the whole amount off-session.
    chargeable = [PaymentState.AUTHORIZED, *([PaymentState.RELEASED] if amount > 0 else [])]
    updated = Payment.objects.filter(pk=payment_id, state__in=chargeable).update(
        state=state, amount=amount, updated_at=now
    )
    if not updated:
        return
    payment = Payment.objects.get(pk=payment_id)
    _record(payment, PaymentEventKind.AMOUNT_FIXED, now, amount=amount)
    if amount > 0:
        defer_task("payments.capture", payment_id=payment_id, lock=f"payment:{payment_id}")
    else:
        defer_task("payments.release", payment_id=payment_id, lock=f"payment:{payment_id}")


def release_holds(*, payment_ids: list[int], now: datetime) -> None:
    """Nothing will be charged on these holds (a cancelled or abandoned start): release them
    in the background. Called in the transaction that calls the session off."""
    for payment_id in payment_ids:
        updated = Payment.objects.filter(pk=payment_id, state=PaymentState.AUTHORIZED).update(
            state=PaymentState.RELEASING, amount=Decimal("0"), updated_at=now
        )
        if updated:
            defer_task("payments.release", payment_id=payment_id, lock=f"payment:{payment_id}")


def reclaim_hold(*, payment_id: int, now: datetime) -> None:
    """The stay called off is on again (a reopened session): a hold not released yet is kept
    for its capture; one already released stays so, and the capture charges off-session."""
    Payment.objects.filter(pk=payment_id, state=PaymentState.RELEASING).update(
        state=PaymentState.AUTHORIZED, amount=None, updated_at=now
    )


def release_unattached(*, payment: Payment, now: datetime) -> None:
    """The start the hold was placed for failed: release the hold."""
    with transaction.atomic():
        if Payment.objects.filter(pk=payment.pk, attached_at=None).exists():
            release_holds(payment_ids=[payment.pk], now=now)


def release(*, payment_id: int, now: datetime) -> None:
    """Job: give the held money back to the card."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.state != PaymentState.RELEASING:
        return
    if payment.hold_reference:
        provider().release(
            reference=payment.hold_reference, idempotency_key=f"payment-{payment.pk}-release"
        )
    with transaction.atomic():
        if _set_state(payment, PaymentState.RELEASED, now, expected=PaymentState.RELEASING):
            _record(payment, PaymentEventKind.HOLD_RELEASED, now, amount=payment.hold_amount)


def release_unknown_hold(*, payment_id: int, now: datetime) -> None:
    """Job: a hold call whose answer was lost. Asked again under the same key, the provider
    answers with the hold it placed then (or places it now), which is released at once."""
    payment = Payment.objects.get(pk=payment_id)
    if not Payment.objects.filter(pk=payment_id, state=PaymentState.UNAVAILABLE).update(
        state=PaymentState.RELEASING, updated_at=now
    ):
        return
    assert payment.card is not None
    hold = provider().place_hold(
        customer=customer_reference(driver=_payer(payment), now=now),
        card=payment.card.reference,
        amount=payment.hold_amount,
        currency=payment.currency,
        idempotency_key=f"payment-{payment.pk}-hold",
        description="Released: the start it was for did not complete",
    )
    Payment.objects.filter(pk=payment_id).update(hold_reference=hold.reference)
    release(payment_id=payment_id, now=now)


def capture(*, payment_id: int, now: datetime) -> None:
    """Job: take the stay's amount, from the hold up to its amount and off-session for the
    rest. A refused card leaves the rest outstanding: the driver pays it before the next start.
    An unreachable provider raises, and the job is retried."""
    payment = Payment.objects.select_related("card").get(pk=payment_id)
    if payment.state != PaymentState.CAPTURING or payment.amount is None:
        return
    from_hold = min(payment.amount, payment.hold_amount)
    if payment.captured_amount < from_hold:
        _capture_hold(payment, from_hold, now)
    rest = payment.amount - payment.captured_amount
    if rest > 0:
        _charge_rest(payment, rest, now)
    else:
        _set_state(
            payment, PaymentState.CAPTURED, now, expected=PaymentState.CAPTURING, captured_at=now
        )


def _capture_hold(payment: Payment, amount: Decimal, now: datetime) -> None:
    hold = provider().hold(reference=payment.hold_reference)
    # A run killed after the provider captured finds it captured: it records, not captures.
    if hold.status == HoldStatus.AUTHORIZED:
        try:
            provider().capture(
                reference=payment.hold_reference,
                amount=amount,
                idempotency_key=f"payment-{payment.pk}-capture",
            )
        except ProviderRefused as refusal:
            _record(payment, PaymentEventKind.CAPTURE_FAILED, now, detail=refusal.message)
            return
    elif hold.status != HoldStatus.CAPTURED:
        _record(payment, PaymentEventKind.CAPTURE_FAILED, now, detail=f"hold {hold.status}")
        return
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(captured_amount=amount, updated_at=now)
        _record(payment, PaymentEventKind.CAPTURED, now, amount=amount, reference=hold.reference)
    payment.captured_amount = amount


def _charge_rest(payment: Payment, rest: Decimal, now: datetime) -> None:
    try:
        reference = _charge(payment, rest, key=f"payment-{payment.pk}-rest")
    except ProviderRefused as refusal:
        with transaction.atomic():
            _set_state(
                payment,
                PaymentState.OUTSTANDING,
                now,
                expected=PaymentState.CAPTURING,
                failure_code=refusal.code,
                failure_message=refusal.message[:500],
                outstanding_since=now,
            )
            _record(
                payment, PaymentEventKind.CAPTURE_FAILED, now, amount=rest, detail=refusal.message
            )
        return
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk, state=PaymentState.CAPTURING).update(
            captured_amount=F("captured_amount") + rest,
            extra_charge_reference=reference,
            state=PaymentState.CAPTURED,
            captured_at=now,
            updated_at=now,
        )
        _record(payment, PaymentEventKind.CHARGED, now, amount=rest, reference=reference)


def _charge(payment: Payment, amount: Decimal, *, key: str) -> str:
    card = payment.card or Card.objects.filter(driver=payment.driver_id, is_default=True).first()
    if card is None:
        raise ProviderRefused("no_card", _("No card on file."))
    return provider().charge(
        customer=customer_reference(driver=_payer(payment), now=payment.updated_at),
        card=card.reference,
        amount=amount,
        currency=payment.currency,
        idempotency_key=key,
        description=f"Parking, payment #{payment.pk}",
    )


def settle(*, payment: Payment, now: datetime) -> Payment:
    """The driver pays an outstanding balance now, off-session on their default card."""
    card = Card.objects.filter(driver=payment.driver_id, is_default=True).first()
    if card is None:
        raise PaymentMethodRequired(_("Add a card to pay the outstanding balance."))
    # Claimed by a conditional update: a double tap charges once.
    if not Payment.objects.filter(pk=payment.pk, state=PaymentState.OUTSTANDING).update(
        state=PaymentState.CAPTURING, card=card, updated_at=now
    ):
        raise NothingToPay(_("This parking session has nothing left to pay."))
    payment.refresh_from_db()
    attempt = payment.events.count()
    rest = payment.outstanding_amount
    try:
        reference = _charge(payment, rest, key=f"payment-{payment.pk}-settle-{attempt}")
    except (ProviderRefused, ProviderUnavailable) as error:
        _set_state(payment, PaymentState.OUTSTANDING, now, expected=PaymentState.CAPTURING)
        if isinstance(error, ProviderUnavailable):
            raise unavailable() from error
        raise PaymentDeclined(
            _("The card was declined: %(reason)s") % {"reason": error.message},
            decline_code=error.code,
        ) from error
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            captured_amount=F("captured_amount") + rest,
            state=PaymentState.CAPTURED,
            captured_at=now,
            failure_code="",
            failure_message="",
            updated_at=now,
        )
        _record(payment, PaymentEventKind.CHARGED, now, amount=rest, reference=reference)
    payment.refresh_from_db()
    return payment


def release_orphan_holds(*, now: datetime) -> int:
    """Holds whose start never made a session (the process died in between): released."""
    cutoff = now - settings.PAYMENT_ORPHAN_HOLD_AFTER
    orphans = list(
        Payment.objects.filter(
            state=PaymentState.AUTHORIZED, attached_at=None, updated_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        release_holds(payment_ids=orphans, now=now)
    return len(orphans)


def retry_captures(*, now: datetime) -> int:
    """Captures whose jobs gave up (the provider down for long): deferred again."""
    from procrastinate.exceptions import AlreadyEnqueued

    stuck = Payment.objects.filter(
        state__in=[PaymentState.CAPTURING, PaymentState.RELEASING],
        updated_at__lt=now - settings.PAYMENT_RETRY_STUCK_AFTER,
    ).values_list("pk", "state")
    count = 0
    for payment_id, state in stuck:
        task = "payments.capture" if state == PaymentState.CAPTURING else "payments.release"
        try:
            with transaction.atomic():
                defer_task(
                    task,
                    payment_id=payment_id,
                    lock=f"payment:{payment_id}",
                    queueing_lock=f"retry:{payment_id}",
                )
                count += 1
        except AlreadyEnqueued:
            pass
    return count


def retry_refunds(*, now: datetime) -> int:
    """Refunds still pending after their jobs gave up (the provider down for long): deferred
    again."""
    from procrastinate.exceptions import AlreadyEnqueued

    stuck = Refund.objects.filter(
        state=RefundState.PENDING, created_at__lt=now - settings.PAYMENT_RETRY_STUCK_AFTER
    ).values_list("pk", "payment_id")
    count = 0
    for refund_id, payment_id in stuck:
        try:
            with transaction.atomic():
                defer_task(
                    "payments.send_refund",
                    refund_id=refund_id,
                    lock=f"payment:{payment_id}",
                    queueing_lock=f"retry-refund:{refund_id}",
                )
                count += 1
        except AlreadyEnqueued:
            pass
    return count


def renew_holds(*, now: datetime) -> int:
    """Holds about to expire during a long stay: a new one is placed, then the old released."""
    due = Payment.objects.select_related("card", "driver").filter(
        state=PaymentState.AUTHORIZED,
        attached_at__isnull=False,
        hold_placed_at__lt=now - settings.PAYMENT_HOLD_RENEW_AFTER,
    )
    renewed = 0
    for payment in due:
        if payment.card is None:
            continue
        old_reference = payment.hold_reference
        hold = provider().place_hold(
            customer=customer_reference(driver=_payer(payment), now=now),
            card=payment.card.reference,
            amount=payment.hold_amount,
            currency=payment.currency,
            idempotency_key=f"payment-{payment.pk}-hold-{payment.hold_placed_at:%Y%m%d%H%M%S}",
            description=f"Parking, payment #{payment.pk} (renewed hold)",
        )
        if hold.status != HoldStatus.AUTHORIZED:
            continue  # the old hold runs out; the capture then charges off-session
        if Payment.objects.filter(
            pk=payment.pk, state=PaymentState.AUTHORIZED, hold_reference=old_reference
        ).update(hold_reference=hold.reference, hold_placed_at=now, updated_at=now):
            provider().release(reference=old_reference, idempotency_key=f"{old_reference}-renewed")
            _record(
                payment,
                PaymentEventKind.HOLD_PLACED,
                now,
                amount=payment.hold_amount,
                reference=hold.reference,
                detail="renewed",
            )
            renewed += 1
        else:
            provider().release(reference=hold.reference, idempotency_key=f"{hold.reference}-x")
    return renewed


# Refunds


def refund(
    *, payment: Payment, amount: Decimal | None, reason: str, actor: User | None, now: datetime
) -> list[Refund]:
    """Give ``amount`` of a payment back to the card, all that is left to refund when
    ``None``. The one way refunds are made, whoever asks.

    Refuses (``RefundRefused``) a payment not paid in full and more than is left to refund;
    then nothing is asked of the provider. Otherwise the refunds are recorded ``pending``
    first, one per charge the money goes back from, and asked of the provider outside any
    transaction, each under a key of its own row. What the provider makes is added to the
    payment's ``refunded_amount`` (``refund_recorded`` is sent in that transaction); what it
    refuses is ``failed``; what it did not answer stays ``pending`` and a job asks again."""
    claimed = _claim_refunds(
        payment_id=payment.pk, amount=amount, reason=reason, actor=actor, now=now
    )
    refunds = []
    for one in claimed:
        try:
            refunds.append(send_refund(refund_id=one.pk, now=now))
        except ProviderUnavailable:
            refunds.append(one)
    return refunds


@transaction.atomic
def _claim_refunds(
    *, payment_id: int, amount: Decimal | None, reason: str, actor: User | None, now: datetime
) -> list[Refund]:
    reason = reason.strip()
    if not reason:
        raise ValueError("A refund needs a reason.")
    # Locked until commit: two refunds at once, or a refund and the capture's last update,
    # each see the other's money.
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.state != PaymentState.CAPTURED:
        raise PaymentNotCaptured(
            _("Only a payment taken in full can be refunded; this one is %(state)s.")
            % {"state": payment.get_state_display()}
        )
    left_by_charge = _left_to_refund_by_charge(payment)
    left = min(
        payment.captured_amount - payment.refunds.not_failed().total(),
        sum(left_by_charge.values(), Decimal("0")),
    )
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise RefundExceedsRefundable(
            _("%(amount)s %(currency)s cannot be refunded: %(left)s %(currency)s is left.")
            % {"amount": amount, "left": left, "currency": payment.currency}
        )
    refunds = []
    for charge, left_on_charge in left_by_charge.items():
        part = min(amount, left_on_charge)
        if part <= 0:
            continue
        refunds.append(
            Refund.objects.create(
                payment=payment,
                amount=part,
                reason=reason,
                actor=actor,
                state=RefundState.PENDING,
                charge_reference=charge,
                created_at=now,
            )
        )
        amount -= part
        if amount == 0:
            break
    for one in refunds:
        # Asked again a minute later if this request dies before it heard the provider.
        defer_task(
            "payments.send_refund",
            refund_id=one.pk,
            lock=f"payment:{payment.pk}",
            schedule_in=60,
        )
    return refunds


def _left_to_refund_by_charge(payment: Payment) -> dict[str, Decimal]:
    """What each charge can still give back, newest first: a stay above its hold gives back
    the charge above the hold (the stay's last hours) before the hold's capture."""
    left = payment.charges()
    for charge, amount in payment.refunds.not_failed().values_list("charge_reference", "amount"):
        left[charge] = left.get(charge, Decimal("0")) - amount
    return dict(reversed(left.items()))


def send_refund(*, refund_id: int, now: datetime) -> Refund:
    """Job, and the rest of :func:`refund`: ask the provider for a ``pending`` refund and
    record what it did. Raises ``ProviderUnavailable`` (the job is retried)."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.state != RefundState.PENDING:
        return refund
    # A run that lost the provider's answer finds the refund made: it records it instead of
    # refunding twice (Stripe's idempotency keys do as much; localstripe ignores them).
    made = next(
        (
            one
            for one in provider().refunds(reference=refund.charge_reference)
            if one.idempotency_key == refund.idempotency_key
        ),
        None,
    )
    if made is None:
        try:
            made = provider().refund(
                reference=refund.charge_reference,
                amount=refund.amount,
                idempotency_key=refund.idempotency_key,
            )
        except ProviderRefused as refusal:
            Refund.objects.filter(pk=refund.pk, state=RefundState.PENDING).update(
                state=RefundState.FAILED, failure_message=refusal.message[:500]
            )
            refund.refresh_from_db()
            return refund
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        _record_refund_made(payment, refund, made, now)
    refund.refresh_from_db()
    return refund


def record_provider_refunds(*, payment: Payment, reference: str, now: datetime) -> int:
    """The refunds the provider made on the charge ``reference`` that the payment does not
    have yet, recorded once each: made in the provider's dashboard (no actor), or ours whose
    answer was lost. Read from the provider as they are now, so a replayed event, or events in
    any order, record each refund once. The number recorded."""
    recorded = 0
    for made in provider().refunds(reference=reference):
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if Refund.objects.filter(provider_reference=made.reference).exists():
                continue
            refund = next(
                (
                    one
                    for one in locked.refunds.filter(state=RefundState.PENDING)
                    if one.idempotency_key == made.idempotency_key
                ),
                None,
            ) or Refund.objects.create(
                payment=locked,
                amount=made.amount,
                reason=_("Refunded in the payment provider's dashboard."),
                state=RefundState.PENDING,
                charge_reference=reference,
                created_at=made.created_at,
            )
            recorded += _record_refund_made(locked, refund, made, now)
    return recorded


def _record_refund_made(
    payment: Payment, refund: Refund, made: ProviderRefund, now: datetime
) -> bool:
    """``refund`` (pending) made by the provider as ``made``: added to the payment, whose row
    the caller locked. ``False`` when it was recorded already."""
    kept_after = payment.kept_amount - refund.amount
    if not Refund.objects.filter(pk=refund.pk, state=RefundState.PENDING).update(
        state=RefundState.SUCCEEDED,
        provider_reference=made.reference,
        refunded_at=made.created_at,
        kept_after=kept_after,
    ):
        return False
    # In SQL, and checked by payment_refunds_within_captured: never more back than came in.
    Payment.objects.filter(pk=payment.pk).update(
        refunded_amount=F("refunded_amount") + refund.amount, updated_at=now
    )
    payment.refunded_amount += refund.amount
    _record(payment, PaymentEventKind.REFUNDED, now, amount=refund.amount, reference=made.reference)
    refund.refresh_from_db()
    refund_recorded.send(sender=Refund, refund=refund, now=now)
    return True


# Reconciliation


def provider_differences() -> list[str]:
    """Every payment whose money, as the provider has it, is not what the database says:
    a hold captured or released there and not here, or another amount kept."""
    differences = []
    settled = Payment.objects.filter(
        state__in=[
            PaymentState.CAPTURED,
            PaymentState.RELEASED,
            PaymentState.AUTHORIZED,
            PaymentState.OUTSTANDING,
        ],
    ).exclude(hold_reference="")
    for payment in settled.iterator():
        differences.extend(_differences_of(payment))
    return differences


def _differences_of(payment: Payment) -> list[str]:
    expected = payment.captured_amount - payment.refunded_amount
    found = Decimal("0")
    references = [payment.hold_reference, *payment.charges()]
    charges = list(dict.fromkeys(filter(None, [*references, payment.extra_charge_reference])))
    for reference in charges:
        hold = provider().hold(reference=reference)
        if payment.state == PaymentState.AUTHORIZED and hold.status != HoldStatus.AUTHORIZED:
            return [f"payment #{payment.pk}: authorized here, {hold.status} at the provider"]
        found += hold.kept
    differences = []
    if found != expected:
        differences.append(
            f"payment #{payment.pk}: {expected} {payment.currency} kept here, "
            f"{found} at the provider"
        )
    if differences or payment.refunds.exists():
        differences.extend(_refunds_at_provider_differences(payment, charges))
    return differences


def _refunds_at_provider_differences(payment: Payment, charges: list[str]) -> list[str]:
    here = dict(payment.refunds.succeeded().values_list("provider_reference", "amount"))
    there = {
        made.reference: made.amount
        for charge in charges
        for made in provider().refunds(reference=charge)
    }
    differences = []
    for reference, amount in there.items():
        if reference not in here:
            differences.append(
                f"payment #{payment.pk}: refund {reference} of {amount} {payment.currency} "
                "at the provider, not here"
            )
        elif here[reference] != amount:
            differences.append(
                f"payment #{payment.pk}: refund {reference} of {here[reference]} here, "
                f"{amount} at the provider"
            )
    differences.extend(
        f"payment #{payment.pk}: refund {reference} of {amount} {payment.currency} here, "
        "not at the provider"
        for reference, amount in here.items()
        if reference not in there
    )
    return differences


def refund_differences() -> list[str]:
    """Payments whose ``refunded_amount`` is not what their refunds add up to, and refunds
    the provider has not answered yet (the job asks again)."""
    totals = Payment.objects.annotate(
        refunds_total=Coalesce(
            Sum("refunds__amount", filter=Q(refunds__state=RefundState.SUCCEEDED)),
            Decimal("0"),
        )
    ).exclude(refunded_amount=F("refunds_total"))
    differences = [
        f"payment #{pk}: refunded {refunded}, its refunds add up to {total}"
        for pk, refunded, total in totals.values_list("pk", "refunded_amount", "refunds_total")
    ]
    pending = Refund.objects.filter(state=RefundState.PENDING).order_by("pk")
    differences.extend(
        f"payment #{refund.payment_id}: refund #{refund.pk} of {refund.amount} not answered "
        "by the provider yet"
        for refund in pending
    )
    return differences


# Webhooks


def record_webhook(*, payload: bytes, headers: dict[str, str], now: datetime) -> bool:
    """Record a verified webhook event once and have a job apply it; ``False`` for a replay.
    Raises ``InvalidEvent``."""
    event = provider().webhook_event(payload=payload, headers=headers)
    try:
        with transaction.atomic():
            recorded = ProviderEvent.objects.create(
                provider=provider().name,
                event_id=event.id,
                type=event.type,
                occurred_at=event.occurred_at,
                payment_reference=event.payment_reference,
                payload=event.payload,
                received_at=now,
            )
            defer_task("payments.apply_event", event_pk=recorded.pk)
    except IntegrityError:
        return False
    return True


def apply_event(*, event_pk: int, now: datetime) -> None:
    """Job: what a provider event says about a payment. Disputes are flagged; a refund event
    has the charge's refunds recorded (:func:`record_provider_refunds`); every event goes
    into the payment's history. Events may come in any order: a dispute's status is only
    replaced by that of a later event."""
    event = ProviderEvent.objects.get(pk=event_pk)
    if event.processed_at is not None:
        return
    payment = _payment_charged(event.payment_reference) if event.payment_reference else None
    if payment is not None and event.type in REFUND_EVENTS:
        # Outside the transaction: it asks the provider for the charge's refunds.
        record_provider_refunds(payment=payment, reference=event.payment_reference, now=now)
    with transaction.atomic():
        if payment is not None:
            _apply_to(payment, event)
        ProviderEvent.objects.filter(pk=event.pk).update(processed_at=now)


def _payment_charged(reference: str) -> Payment | None:
    """The payment whose hold, charge above the hold or debt settled is ``reference``."""
    return (
        Payment.objects.filter(hold_reference=reference).first()
        or Payment.objects.filter(extra_charge_reference=reference).first()
        or Payment.objects.filter(
            events__kind=PaymentEventKind.CHARGED, events__reference=reference
        ).first()
    )


def _apply_to(payment: Payment, event: ProviderEvent) -> None:
    if event.type.startswith("charge.dispute."):
        status = str(event.payload["data"]["object"].get("status", ""))
        # Opened at the earliest dispute event's time, whichever came in first.
        Payment.objects.filter(pk=payment.pk).filter(
            Q(disputed_at=None) | Q(disputed_at__gt=event.occurred_at)
        ).update(disputed_at=event.occurred_at)
        Payment.objects.filter(pk=payment.pk).filter(
            Q(dispute_updated_at=None) | Q(dispute_updated_at__lte=event.occurred_at)
        ).update(dispute_status=status, dispute_updated_at=event.occurred_at)
    _record(
        payment,
        PaymentEventKind.PROVIDER_EVENT,
        event.occurred_at,
        reference=event.event_id,
        detail=event.type,
    )


# Helpers


def _set_state(
    payment: Payment,
    state: PaymentState,
    now: datetime,
    *,
    expected: PaymentState | None = None,
    **changes: object,
) -> bool:
    rows = Payment.objects.filter(pk=payment.pk)
    if expected is not None:
        rows = rows.filter(state=expected)
    updated = rows.update(state=state, updated_at=now, **changes) > 0
    if updated:
        payment.state = state
    return updated


def _record(
    payment: Payment,
    kind: PaymentEventKind,
    now: datetime,
    *,
    amount: Decimal | None = None,
    reference: str = "",
    detail: str = "",
) -> None:
    PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        amount=amount,
        reference=reference,
        detail=detail[:500],
        created_at=now,
    )


def _payer(payment: Payment) -> User:
    """The driver of a payment with money still moving: an account is deleted only once its
    payments are settled (``ensure_settled``)."""
    if payment.driver is None:
        raise ValueError(f"Payment #{payment.pk} has no driver but is {payment.state}.")
    return payment.driver


def ensure_settled(*, driver: User) -> None:
    """Refuse (``PaymentInProgress``) while a payment of ``driver`` still has money moving:
    a hold to capture or release needs the driver's customer and card until it is done."""
    unsettled = Payment.objects.filter(driver=driver).exclude(state__in=SETTLED_STATES).first()
    if unsettled is not None:
        raise PaymentInProgress(
            _("Payment #%(id)s is still being processed; try again in a few minutes.")
            % {"id": unsettled.pk},
        )


def defer_task(
    name: str,
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_in: int | None = None,
    **kwargs: object,
) -> None:
    from payments import tasks  # which imports this module

    defer(
        tasks.BY_NAME[name],
        lock=lock,
        queueing_lock=queueing_lock,
        schedule_in={"seconds": schedule_in} if schedule_in else None,
        **kwargs,
    )
