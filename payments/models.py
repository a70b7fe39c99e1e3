"""Money the drivers pay: their saved cards, and one payment per parking session, from the
hold placed at start to what is captured, released or still owed.

Amounts are ``Decimal`` in the currency's major unit (lei); providers convert to minor units
(bani) at their edge."""

from decimal import Decimal
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _


class Card(models.Model):
    """A card the driver saved with the provider for off-session payments. The card number
    never reaches the backend: only the provider's reference and what a list shows."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_cards"
    )
    provider = models.CharField(max_length=32)
    reference = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["driver"], condition=Q(is_default=True), name="one_default_card_per_driver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class ProviderCustomer(models.Model):
    """The driver as the provider knows them (a Stripe Customer), created once."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_customers"
    )
    provider = models.CharField(max_length=32)
    reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["driver", "provider"], name="one_customer_per_driver_and_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} customer {self.reference}"


class CardSetup(models.Model):
    """A card being saved: the provider's setup (a SetupIntent) the app confirms on the phone.
    Once the provider says it succeeded, the card is recorded and the setup is done."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="card_setups"
    )
    provider = models.CharField(max_length=32)
    reference = models.CharField(max_length=255, unique=True)
    is_done = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["driver"], condition=Q(is_done=False), name="card_setup_pending"),
        ]

    def __str__(self) -> str:
        return f"Card setup {self.reference}"


class PaymentState(models.TextChoices):
    PENDING = "pending", "Asking the provider for a hold"
    REQUIRES_ACTION = "requires_action", "Waiting for the driver's authentication"
    DECLINED = "declined", "Hold declined"
    UNAVAILABLE = "unavailable", "Provider unavailable"
    AUTHORIZED = "authorized", "Hold placed"
    CAPTURING = "capturing", "Capturing"
    CAPTURED = "captured", "Paid"
    OUTSTANDING = "outstanding", "Outstanding balance"
    RELEASING = "releasing", "Releasing the hold"
    RELEASED = "released", "Hold released"


# Nothing more will happen to the money: what the provider holds is what the payment says.
SETTLED_STATES = (
    PaymentState.DECLINED,
    PaymentState.REQUIRES_ACTION,
    PaymentState.CAPTURED,
    PaymentState.RELEASED,
)

# The hold was never placed: nothing to release, nothing owed.
NO_HOLD_STATES = (
    PaymentState.PENDING,
    PaymentState.REQUIRES_ACTION,
    PaymentState.DECLINED,
    PaymentState.UNAVAILABLE,
)


class PaymentQuerySet(models.QuerySet["Payment"]):
    def outstanding(self) -> Self:
        return self.filter(state=PaymentState.OUTSTANDING)


class Payment(models.Model):
    """What one parking session pays: the hold placed at start (``hold_amount``), the amount
    fixed at exit (``amount``), what the provider captured and refunded. A session links to
    its payment; the payment does not know about sessions, so other providers and other
    things to pay for need no change here."""

    # Emptied when the account is deleted: the payment stays, as an accounting record.
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    provider = models.CharField(max_length=32)
    # The start request's Idempotency-Key (or one made up for it): a retry finds this payment
    # instead of placing a second hold, and the provider is called under keys derived from it.
    idempotency_key = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=PaymentState.choices)
    currency = models.CharField(max_length=3)
    hold_amount = models.DecimalField(max_digits=10, decimal_places=2)
    hold_reference = models.CharField(max_length=255, blank=True)
    hold_client_secret = models.CharField(max_length=255, blank=True)
    hold_placed_at = models.DateTimeField(null=True, blank=True)
    card = models.ForeignKey(
        Card, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    # Set when the session the hold was placed for exists; a hold without one after a while
    # was left by a start that failed, and is released.
    attached_at = models.DateTimeField(null=True, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    captured_amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    # When it was paid in full (the capture, or the debt settled): the accounting export's
    # day for what it captured.
    captured_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    # A charge above the hold, made off-session at exit.
    extra_charge_reference = models.CharField(max_length=255, blank=True)
    # A chargeback the driver's bank opened (Stripe's dispute webhooks), flagged for the
    # back office; the status is the latest event's, whatever order events came in.
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_status = models.CharField(max_length=32, blank=True)
    dispute_updated_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # When the capture left money owed (the back office's debts list); a failed attempt to
    # pay it later does not move it.
    outstanding_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="payment_state_updated"),
            models.Index(
                fields=["driver"], condition=Q(state="outstanding"), name="payment_outstanding"
            ),
            models.Index(
                fields=["captured_at"],
                condition=Q(captured_at__isnull=False),
                name="payment_captured_at",
            ),
            # The debts list, newest first: as many rows as there are debts, not payments.
            models.Index(
                fields=["-outstanding_since"],
                condition=Q(state="outstanding"),
                name="payment_outstanding_since",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["driver", "idempotency_key"], name="one_payment_per_idempotency_key"
            ),
            models.CheckConstraint(
                condition=Q(state__in=PaymentState.values), name="payment_state_valid"
            ),
            models.CheckConstraint(condition=Q(hold_amount__gt=0), name="payment_hold_positive"),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0),
                name="payment_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0), name="payment_captured_not_negative"
            ),
            # Money never flows back more than it came in, nor in more than was charged.
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("captured_amount")),
                name="payment_refunds_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(captured_amount__lte=F("amount")),
                name="payment_captured_within_amount",
            ),
            # Paid means paid in full.
            models.CheckConstraint(
                condition=~Q(state="captured") | Q(captured_amount=F("amount")),
                name="payment_captured_is_the_amount",
            ),
            models.CheckConstraint(
                condition=~Q(state="outstanding") | Q(outstanding_since__isnull=False),
                name="payment_outstanding_has_a_since",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} ({self.state})"

    @property
    def outstanding_amount(self) -> Decimal:
        """What is owed and not captured yet (zero before exit)."""
        if self.amount is None:
            return Decimal("0.00")
        return self.amount - self.captured_amount

    @property
    def kept_amount(self) -> Decimal:
        """What the payment took and kept: captured less refunded."""
        return self.captured_amount - self.refunded_amount

    @property
    def refunds_made(self) -> list["Refund"]:
        """The refunds the provider made, in the order it made them (read from a prefetch of
        ``refunds`` when there is one)."""
        made = [refund for refund in self.refunds.all() if refund.state == RefundState.SUCCEEDED]
        return sorted(made, key=lambda refund: (refund.refunded_at, refund.pk))

    def charges(self) -> dict[str, Decimal]:
        """What each provider charge of the payment took, by its reference, oldest first:
        the hold's capture, a charge above the hold, a debt settled. Read from the history,
        which records each one in the transaction that adds it to ``captured_amount``."""
        taken: dict[str, Decimal] = {}
        events = self.events.filter(
            kind__in=[PaymentEventKind.CAPTURED, PaymentEventKind.CHARGED], amount__gt=0
        ).order_by("created_at", "id")
        for reference, amount in events.values_list("reference", "amount"):
            taken[reference] = taken.get(reference, Decimal("0")) + (amount or Decimal("0"))
        return taken


class PaymentEventKind(models.TextChoices):
    HOLD_PLACED = "hold_placed", "Hold placed"
    HOLD_DECLINED = "hold_declined", "Hold declined"
    HOLD_REQUIRES_ACTION = "hold_requires_action", "Authentication required"
    HOLD_RELEASED = "hold_released", "Hold released"
    AMOUNT_FIXED = "amount_fixed", "Amount fixed"
    CAPTURED = "captured", "Captured"
    CHARGED = "charged", "Charged"
    CAPTURE_FAILED = "capture_failed", "Capture failed"
    REFUNDED = "refunded", "Refunded"
    PROVIDER_EVENT = "provider_event", "Reported by the provider"


class PaymentEvent(models.Model):
    """The payment's history, as the driver's ``…/payment`` and the back office show it."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=PaymentEventKind.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class ProviderEvent(models.Model):
    """A webhook event the provider sent, recorded once per event id (a replay is ignored)
    and applied by a job."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    # When the provider created the event: applying events compares these, so a late
    # event does not undo a newer one.
    occurred_at = models.DateTimeField()
    payment_reference = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="one_provider_event_per_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class RefundState(models.TextChoices):
    PENDING = "pending", _("Asked of the provider")
    SUCCEEDED = "succeeded", _("Refunded")
    FAILED = "failed", _("Refused by the provider")


class RefundQuerySet(models.QuerySet["Refund"]):
    def succeeded(self) -> Self:
        return self.filter(state=RefundState.SUCCEEDED)

    def not_failed(self) -> Self:
        """Refunds made or under way: their money cannot be refunded again."""
        return self.exclude(state=RefundState.FAILED)

    def total(self) -> Decimal:
        total: Decimal = self.aggregate(total=Coalesce(Sum("amount"), Decimal("0")))["total"]
        return total


class Refund(models.Model):
    """Money given back on a captured payment, one per refund at the provider: asked from the
    back office (``actor``, who gave ``reason``) or made in the provider's dashboard (no
    actor). A refund asked for more than one charge of the payment holds is made as one
    ``Refund`` per charge it takes money back from (``charge_reference``)."""

    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.PROTECT, related_name="refunds"
    )
    amount = models.DecimalField(verbose_name=_("amount"), max_digits=10, decimal_places=2)
    reason = models.TextField(verbose_name=_("reason"))
    # Emptied if the staff account goes; the reason and the audit trail stay.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_refunds",
    )
    state = models.CharField(verbose_name=_("state"), max_length=16, choices=RefundState.choices)
    # The provider charge (a Stripe PaymentIntent) the money goes back from.
    charge_reference = models.CharField(verbose_name=_("charge reference"), max_length=255)
    # The provider's refund (a Stripe Refund id), once it is made.
    provider_reference = models.CharField(
        verbose_name=_("provider reference"), max_length=255, blank=True
    )
    # What the payment kept after this refund (captured less refunded): the VAT a refund
    # gives back is the VAT of what was kept before it less that of what is kept after, so
    # a receipt's or an export's figures add up to the cent.
    kept_after = models.DecimalField(
        verbose_name=_("kept after"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    failure_message = models.CharField(
        verbose_name=_("failure message"), max_length=500, blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    # When the provider made it: the accounting export's day for it.
    refunded_at = models.DateTimeField(verbose_name=_("refunded at"), null=True, blank=True)

    objects = RefundQuerySet.as_manager()

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["refunded_at"],
                condition=Q(state="succeeded"),
                name="refund_succeeded_at",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=~Q(reason=""), name="refund_reason_required"),
            models.CheckConstraint(
                condition=Q(state__in=RefundState.values), name="refund_state_valid"
            ),
            # A provider refund is recorded once, whichever way it is heard of first.
            models.UniqueConstraint(
                fields=["provider_reference"],
                condition=~Q(provider_reference=""),
                name="one_refund_per_provider_reference",
            ),
            models.CheckConstraint(
                condition=~Q(state="succeeded")
                | (
                    ~Q(provider_reference="")
                    & Q(refunded_at__isnull=False, kept_after__isnull=False, kept_after__gte=0)
                ),
                name="refund_succeeded_is_recorded",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} ({self.amount}, {self.state})"

    @property
    def idempotency_key(self) -> str:
        """The key the provider is asked under: a retry of this refund never refunds twice."""
        return f"refund-{self.pk}"
