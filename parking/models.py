import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.formats import number_format
from django.utils.translation import get_language, gettext, ngettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from payments.models import PaymentState
from smart_keys.models import AccessPoint, Direction

if TYPE_CHECKING:
    from accounts.models import User

CURRENCY_CODE_REGEX = r"^[A-Z]{3}$"
CENT = Decimal("0.01")
DAY = timedelta(days=1)


class State(models.TextChoices):
    ENTERING = "entering", _("Entering")
    ACTIVE = "active", _("Active")
    EXITING = "exiting", _("Exiting")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


OPEN_STATES = (State.ENTERING, State.ACTIVE, State.EXITING)
# A car is inside: what ParkingOccupancy counts.
PARKED_STATES = (State.ACTIVE, State.EXITING)
CLOSED_STATES = (State.FINISHED, State.CANCELLED)
# From ``exit`` on, the session's key opens the exit barriers.
EXIT_STATES = (State.EXITING, State.FINISHED)


class SessionType(models.TextChoices):
    PAY_PER_USE = "pay_per_use", _("Pay per use")


def entering_cutoff(now: datetime) -> datetime:
    """Sessions still ``entering`` that started at or before this moment count as cancelled."""
    return now - settings.PARKING_ENTERING_TIMEOUT


class OperatorQuerySet(models.QuerySet["Operator"]):
    def staffed_by(self, user: "User") -> Self:
        return self.filter(memberships__user=user)


class Operator(models.Model):
    """A parking company. Its staff run its secured parkings in the back office."""

    name = models.CharField(verbose_name=_("name"), max_length=200, unique=True)
    # As receipts name the seller: the company's registered name and tax id (CUI in Romania).
    legal_name = models.CharField(verbose_name=_("legal name"), max_length=200, blank=True)
    tax_id = models.CharField(verbose_name=_("tax id"), max_length=32, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    objects = OperatorQuerySet.as_manager()

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class OperatorMembership(models.Model):
    """A back-office user working for an operator: they see and change only its parkings."""

    operator = models.ForeignKey(
        Operator, verbose_name=_("operator"), on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="operator_memberships",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("operator membership")
        verbose_name_plural = _("operator memberships")
        ordering = ["operator", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "user"], name="one_membership_per_operator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.operator}"


class SecuredParkingQuerySet(models.QuerySet["SecuredParking"]):
    def run_by(self, user: "User") -> Self:
        """Parkings of the operators ``user`` works for (one row each: memberships are unique)."""
        return self.filter(operator__memberships__user=user)

    def with_occupancy(self, now: datetime) -> Self:
        """Annotate ``occupied_places``: the places taken right now, by the cars parked
        (``ParkingOccupancy``'s counter) and the drivers at the entrance within its deadline.

        Its cost follows the parkings listed, never the sessions behind them."""
        # Sessions in ``entering`` are not in the counter but counted here from the index of
        # open sessions (session_open_parking), by start time: one past its deadline holds
        # no place from that instant, as on every read, whether or not the clean-up job has
        # written its cancellation yet. The range holds only drivers who started within the
        # deadline, each of whom took a free place: bounded by the capacity, never by history
        # or by stale sessions left for the clean-up.
        entering = (
            ParkingSession.objects.filter(
                secured_parking=OuterRef("pk"),
                state=State.ENTERING,
                start_time__gt=entering_cutoff(now),
            )
            .order_by()
            .values("secured_parking")
            .annotate(count=models.Count("*"))
            .values("count")
        )
        return self.annotate(
            occupied_places=Coalesce(F("occupancy__parked"), 0)
            + Coalesce(Subquery(entering), 0, output_field=models.IntegerField())
        )


class SecuredParking(models.Model):
    """A barrier-controlled car park that drivers pay for per use."""

    name = models.CharField(verbose_name=_("name"), max_length=200)
    # Nullable only so existing parkings survive the migration; the back office requires it
    # from operator staff, and a parking without one is visible to superusers alone.
    operator = models.ForeignKey(
        Operator,
        verbose_name=_("operator"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="secured_parkings",
    )
    description = models.TextField(verbose_name=_("description"), blank=True)
    address = models.CharField(verbose_name=_("address"), max_length=255, blank=True)
    latitude = models.DecimalField(
        verbose_name=_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        verbose_name=_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    is_active = models.BooleanField(
        verbose_name=_("is active"), default=True, help_text=_("Accepts new parking sessions.")
    )
    is_online = models.BooleanField(
        verbose_name=_("is online"),
        default=False,
        help_text=_("Barriers open only on the backend's request; access commands are unusable."),
    )
    currency = models.CharField(
        verbose_name=_("currency"),
        max_length=3,
        default="RON",
        validators=[RegexValidator(CURRENCY_CODE_REGEX, "Use an ISO 4217 code such as RON.")],
    )
    capacity = models.PositiveIntegerField(
        verbose_name=_("capacity"), default=100, help_text=_("Parking places.")
    )
    charges_by_card = models.BooleanField(
        verbose_name=_("charges by card"),
        default=True,
        help_text=_("Drivers pay by card in the app: a hold at start, captured at exit."),
    )
    hold_amount = models.DecimalField(
        verbose_name=_("hold amount"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Held on the card at start; empty for the tariff's daily cap."),
    )
    access_point_required = models.BooleanField(
        verbose_name=_("access point required"),
        default=False,
        help_text=_(
            "The app must name the barrier it sees (access_point_id) to get an access "
            "command; each command then opens that barrier alone."
        ),
    )
    entrance_tries = models.PositiveSmallIntegerField(
        verbose_name=_("entrance tries"),
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Entrance attempts a parking session gets."),
    )
    exit_tries = models.PositiveSmallIntegerField(
        verbose_name=_("exit tries"),
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Exit attempts a parking session gets."),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = SecuredParkingQuerySet.as_manager()

    # Annotated by SecuredParkingQuerySet.with_occupancy() only.
    occupied_places: int

    class Meta:
        verbose_name = _("secured parking")
        verbose_name_plural = _("secured parkings")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX),
                name="secured_parking_currency_iso",
            ),
            models.CheckConstraint(
                condition=Q(entrance_tries__gte=1, exit_tries__gte=1),
                name="secured_parking_tries_at_least_one",
            ),
            models.CheckConstraint(
                condition=Q(hold_amount__isnull=True) | Q(hold_amount__gt=0),
                name="secured_parking_hold_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ParkingOccupancy(models.Model):
    """How many cars are parked in a secured parking: its sessions in ``active`` or
    ``exiting``, counted up and down in the transaction of each state change that parks or
    lets out a car (parking.services.occupancy), so the parking list reads one number per
    parking instead of counting sessions.

    A table of its own, not a column of the parking: saving a parking (the back office's
    form) writes every column it read, and would write back a count that cars entering
    meanwhile had changed. The row appears with the first car (a parking without one has
    none parked). ``recount_occupancy`` repairs any drift from the sessions."""

    secured_parking = models.OneToOneField(
        SecuredParking,
        verbose_name=_("secured parking"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="occupancy",
    )
    parked = models.PositiveIntegerField(verbose_name=_("parked cars"), default=0)

    class Meta:
        verbose_name = _("parking occupancy")
        verbose_name_plural = _("parking occupancies")
        constraints = [
            # No upper bound: an operator may lower the capacity below the cars inside (a
            # level closed); they leave as usual, and starts wait until there is room.
            models.CheckConstraint(condition=Q(parked__gte=0), name="occupancy_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.parked} parked at {self.secured_parking_id}"


class ParkingSessionQuerySet(models.QuerySet["ParkingSession"]):
    def open(self, now: datetime) -> Self:
        """Sessions in an open state, leaving out ``entering`` ones past their deadline."""
        return self.open_given_cutoff(entering_cutoff(now))

    def open_given_cutoff(self, cutoff: datetime) -> Self:
        return self.filter(state__in=OPEN_STATES).exclude(
            state=State.ENTERING, start_time__lte=cutoff
        )

    def stale_entering(self, now: datetime) -> Self:
        return self.filter(state=State.ENTERING, start_time__lte=entering_cutoff(now))

    def for_driver(self, driver: "User") -> Self:
        return self.filter(driver=driver)

    def owing(self) -> Self:
        """Sessions whose card payment left money owed (a capture or charge was refused)."""
        return self.filter(payment__state=PaymentState.OUTSTANDING)

    def with_body(self) -> Self:
        """With everything the API's session body reads, in two queries."""
        return self.select_related("secured_parking__tariff", "smart_key").prefetch_related(
            Prefetch(
                "smart_key__access_points",
                queryset=AccessPoint.objects.order_by("id"),
                to_attr="ordered_access_points",
            )
        )


class ParkingSession(models.Model):
    """One stay of one driver in one secured parking, from the entrance barrier to payment."""

    # Empty once anonymised (the account was deleted, or the session is past the personal
    # data retention): the session stays as an accounting record, about no one.
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("driver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="parking_sessions",
    )
    secured_parking = models.ForeignKey(
        SecuredParking,
        verbose_name=_("secured parking"),
        on_delete=models.PROTECT,
        related_name="parking_sessions",
    )
    smart_key = models.OneToOneField(
        "smart_keys.SmartKey",
        verbose_name=_("smart key"),
        on_delete=models.PROTECT,
        related_name="parking_session",
    )
    type = models.CharField(
        verbose_name=_("type"),
        max_length=16,
        choices=SessionType.choices,
        default=SessionType.PAY_PER_USE,
    )
    state = models.CharField(
        verbose_name=_("state"), max_length=16, choices=State.choices, default=State.ENTERING
    )
    start_time = models.DateTimeField(verbose_name=_("start time"))
    end_time = models.DateTimeField(verbose_name=_("end time"), null=True, blank=True)
    entrance_remaining_tries = models.PositiveSmallIntegerField(
        verbose_name=_("entrance remaining tries")
    )
    exit_remaining_tries = models.PositiveSmallIntegerField(verbose_name=_("exit remaining tries"))
    amount = models.DecimalField(
        verbose_name=_("amount"), max_digits=10, decimal_places=2, default=Decimal("0.00")
    )
    currency = models.CharField(verbose_name=_("currency"), max_length=3)
    # The tariff's prices when the session started (Tariff.terms): what the stay pays.
    tariff_terms = models.JSONField(
        verbose_name=_("tariff terms"), null=True, blank=True, editable=False
    )
    # The VAT rate included in the amount, fixed with it at exit (the rate in force when
    # the service is provided).
    vat_rate = models.DecimalField(
        verbose_name=_("VAT rate"), max_digits=5, decimal_places=4, null=True, blank=True
    )
    # What pays for the stay, from the hold at start (none at a parking that does not charge
    # by card, or whose stays cost nothing).
    payment = models.OneToOneField(
        "payments.Payment",
        verbose_name=_("payment"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="parking_session",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = ParkingSessionQuerySet.as_manager()

    class Meta:
        verbose_name = _("parking session")
        verbose_name_plural = _("parking sessions")
        ordering = ["-start_time", "-id"]
        permissions = [
            ("operate_parkingsession", "Can finalize, cancel and grant tries from the back office"),
            ("refund_parkingsession", "Can refund a finished session's payment"),
        ]
        # The back-office list is ordered by start time and filtered by state, parking and
        # driver: each filter has an index that also yields that order, so a page is read
        # from an index instead of sorting a million rows.
        indexes = [
            models.Index(fields=["driver", "-start_time"], name="session_driver_start"),
            models.Index(fields=["secured_parking", "state"], name="session_parking_state"),
            # Occupancy (the parking list, the capacity check of a start): only the open
            # sessions, a few per place however long the history, read without the table.
            models.Index(
                fields=["secured_parking", "state", "start_time"],
                condition=Q(state__in=OPEN_STATES),
                name="session_open_parking",
            ),
            models.Index(fields=["-start_time", "-id"], name="session_start"),
            models.Index(fields=["state", "-start_time"], name="session_state_start"),
            models.Index(fields=["secured_parking", "-start_time"], name="session_parking_start"),
            # Finished sessions per parking by end time.
            models.Index(
                fields=["secured_parking", "end_time"],
                condition=Q(state="finished"),
                name="session_finished_end",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["driver"],
                condition=Q(state__in=OPEN_STATES),
                name="one_open_session_per_driver",
            ),
            models.CheckConstraint(
                condition=Q(entrance_remaining_tries__gte=0), name="entrance_tries_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(exit_remaining_tries__gte=0), name="exit_tries_not_negative"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="amount_not_negative"),
            models.CheckConstraint(
                condition=Q(end_time__isnull=True) | Q(end_time__gte=F("start_time")),
                name="session_ends_after_start",
            ),
            models.CheckConstraint(condition=Q(state__in=State.values), name="session_state_valid"),
            models.CheckConstraint(
                condition=Q(driver__isnull=False) | Q(state__in=CLOSED_STATES),
                name="only_closed_sessions_anonymised",
            ),
        ]

    def __str__(self) -> str:
        return f"Session #{self.pk} ({self.state})"

    @property
    def barrier_direction(self) -> Direction:
        """The barriers the session's key opens: the entrance until the driver heads out."""
        return Direction.EXIT if self.state in EXIT_STATES else Direction.ENTRANCE

    def is_stale(self, now: datetime) -> bool:
        """Left in ``entering`` past the deadline: it counts as cancelled, whether or not
        the clean-up command has written that down yet."""
        return self.state == State.ENTERING and self.start_time <= entering_cutoff(now)

    def effective_state(self, now: datetime) -> str:
        return State.CANCELLED if self.is_stale(now) else self.state

    def amount_due(self, now: datetime) -> Decimal:
        """So far while parked; fixed from the moment the driver heads for the exit."""
        if self.state == State.ACTIVE:
            return self.charge_for_stay(now)
        return Decimal("0.00") if self.is_stale(now) else self.amount

    @property
    def vat_amount(self) -> Decimal:
        """The VAT included in the amount, rounded half-up to the cent."""
        return self.vat_included_in(self.amount)

    def vat_included_in(self, amount: Decimal) -> Decimal:
        """The VAT included in ``amount`` at the session's rate, rounded half-up to the cent
        (``vat_included`` is the same rule in SQL)."""
        if not self.vat_rate:
            return Decimal("0.00")
        return (amount * self.vat_rate / (1 + self.vat_rate)).quantize(CENT, ROUND_HALF_UP)

    def vat_given_back(self, *, amount: Decimal, kept_after: Decimal) -> Decimal:
        """The VAT a refund of ``amount`` gives back, leaving ``kept_after``: the VAT of what
        was kept before it less that of what is kept after, so that the VAT of what was
        captured, less the refunds', is the VAT of the amount, to the cent."""
        return self.vat_included_in(kept_after + amount) - self.vat_included_in(kept_after)

    def charge_for_stay(self, now: datetime) -> Decimal:
        """What the stay from its start to ``now`` costs at the tariff agreed at its start
        (sessions started before tariffs were kept: the parking's tariff now)."""
        if self.tariff_terms is not None:
            return TariffTerms.from_json(self.tariff_terms).amount_for(now - self.start_time)
        try:
            tariff = self.secured_parking.tariff
        except Tariff.DoesNotExist:
            return self.amount
        return tariff.amount_for(now - self.start_time)


class Debt(ParkingSession):
    """A session seen as what its driver owes: the back office's debts list
    (``ParkingSessionQuerySet.owing``), beside the list of every session."""

    class Meta:
        proxy = True
        verbose_name = _("debt")
        verbose_name_plural = _("debts")


class AnomalyKind(models.TextChoices):
    SHARED_COMMAND = "shared_command", _("One command, two openings")
    NO_SESSION = "no_session", _("Passage with no session")
    EXIT_WITHOUT_ENTRANCE = "exit_without_entrance", _("Exit without an entrance")
    CLOSED_SESSION_PASSAGE = "closed_session_passage", _("Passage of a closed session")


class AnomalyQuerySet(models.QuerySet["Anomaly"]):
    def unresolved(self) -> Self:
        return self.filter(resolved_at__isnull=True)


class Anomaly(models.Model):
    """Something the barriers' records show that should not happen: one command opening
    twice, a passage naming no session, an exit with no entrance on record, a passage of a
    session that was cancelled or timed out. Written by passage evidence
    (parking.services.passages), once per record and kind; operators read them in the back
    office."""

    kind = models.CharField(verbose_name=_("kind"), max_length=24, choices=AnomalyKind.choices)
    secured_parking = models.ForeignKey(
        SecuredParking,
        verbose_name=_("secured parking"),
        on_delete=models.PROTECT,
        related_name="anomalies",
    )
    parking_session = models.ForeignKey(
        ParkingSession,
        verbose_name=_("parking session"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="anomalies",
    )
    passage_record = models.ForeignKey(
        "smart_keys.PassageRecord",
        verbose_name=_("passage record"),
        on_delete=models.PROTECT,
        related_name="anomalies",
    )
    detected_at = models.DateTimeField(verbose_name=_("detected at"))
    detail = models.CharField(verbose_name=_("detail"), max_length=255, blank=True)
    # An exit without an entrance is resolved when the entrance's record comes in late, or
    # when the stay it ends is found (the car came in on another session of the driver).
    resolved_at = models.DateTimeField(verbose_name=_("resolved at"), null=True, blank=True)
    resolution = models.CharField(verbose_name=_("resolution"), max_length=255, blank=True)

    objects = AnomalyQuerySet.as_manager()

    class Meta:
        verbose_name = _("anomaly")
        verbose_name_plural = _("anomalies")
        ordering = ["-detected_at", "-id"]
        indexes = [
            models.Index(fields=["-detected_at", "-id"], name="anomaly_time"),
            models.Index(fields=["secured_parking", "-detected_at"], name="anomaly_parking_time"),
            models.Index(fields=["parking_session"], name="anomaly_session"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["passage_record", "kind"], name="one_anomaly_per_record_and_kind"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=AnomalyKind.values), name="anomaly_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class AuditAction(models.TextChoices):
    FINALIZE = "finalize", _("Finalized")
    CANCEL = "cancel", _("Cancelled")
    GRANT_TRIES = "grant_tries", _("Granted extra tries")
    DELETE_ACCOUNT = "delete_account", _("Deleted a driver's account")
    REFUND = "refund", _("Refunded")


class SessionAuditEntry(models.Model):
    """Who acted from the back office, when, how and why: on a parking session, or on a
    driver's account (a deletion request carried out; no session, the account's id in
    ``details``)."""

    # PROTECT: an audit trail that disappears with the row it audits is no audit trail.
    session = models.ForeignKey(
        ParkingSession,
        verbose_name=_("session"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        related_name="session_audit_entries",
    )
    action = models.CharField(verbose_name=_("action"), max_length=16, choices=AuditAction.choices)
    reason = models.TextField(verbose_name=_("reason"))
    details = models.JSONField(
        verbose_name=_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("session audit entry")
        ordering = ["created_at", "id"]
        verbose_name_plural = _("session audit entries")
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="audit_reason_required"),
            models.CheckConstraint(
                condition=Q(action__in=AuditAction.values), name="audit_action_valid"
            ),
            # Session actions name their session; an account deletion names none.
            models.CheckConstraint(
                condition=Q(session__isnull=True, action=AuditAction.DELETE_ACCOUNT)
                | (Q(session__isnull=False) & ~Q(action=AuditAction.DELETE_ACCOUNT)),
                name="audit_session_unless_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"


# Billing periods of whole days or hours are named by their unit; others in minutes.
PERIOD_UNITS = (
    (
        1440,
        ngettext_lazy(
            "{price} {currency} per started day",
            "{price} {currency} per started {count} days",
            "count",
        ),
    ),
    (
        60,
        ngettext_lazy(
            "{price} {currency} per started hour",
            "{price} {currency} per started {count} hours",
            "count",
        ),
    ),
    (
        1,
        ngettext_lazy(
            "{price} {currency} per started {count} min",
            "{price} {currency} per started {count} min",
            "count",
        ),
    ),
)


def _per_started_period(price: str, currency: str, minutes: int) -> str:
    """``5.00 RON per started hour``, in the active language."""
    unit, template = next((unit, text) for unit, text in PERIOD_UNITS if minutes % unit == 0)
    return template.format(price=price, currency=currency, count=minutes // unit)


# Cached per language and tariff values: the parking list shows 20 summaries a page, and
# localised number formatting through Django's format lookups cost more app CPU than the
# rest of the page. A few hundred distinct tariffs fit many times over.
@lru_cache(maxsize=4096)
def _tariff_summary(
    language: str | None,
    currency: str,
    free_minutes: int,
    period_minutes: int,
    price: Decimal,
    daily_cap: Decimal | None,
) -> str:
    text = _per_started_period(number_format(price, 2), currency, period_minutes)
    if free_minutes:
        text = ngettext(
            "First {minutes} min free, then {rest}",
            "First {minutes} min free, then {rest}",
            free_minutes,
        ).format(minutes=free_minutes, rest=text)
    if daily_cap is not None:
        text = gettext("{rest}, at most {cap} {currency} per day").format(
            rest=text, cap=number_format(daily_cap, 2), currency=currency
        )
    return text


class Tariff(models.Model):
    """How a secured parking charges: a free grace period, then per started period, capped daily."""

    secured_parking = models.OneToOneField(
        SecuredParking,
        verbose_name=_("secured parking"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tariff",
    )
    free_minutes = models.PositiveIntegerField(
        verbose_name=_("free minutes"),
        default=15,
        help_text=_("Stays up to this long are free; longer ones pay from the start."),
    )
    period_minutes = models.PositiveIntegerField(
        verbose_name=_("period minutes"),
        default=60,
        validators=[MinValueValidator(1)],
        help_text=_("Billing period; started ones count."),
    )
    price_per_period = models.DecimalField(
        verbose_name=_("price per period"),
        max_digits=10,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0"))],
    )
    daily_cap = models.DecimalField(
        verbose_name=_("daily cap"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Most a stay pays per 24 hours; empty for no cap."),
    )

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_minutes__gte=1), name="tariff_period_positive"
            ),
            models.CheckConstraint(
                condition=Q(price_per_period__gte=0), name="tariff_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(daily_cap__isnull=True) | Q(daily_cap__gte=0),
                name="tariff_daily_cap_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def summary(self) -> str:
        """The tariff in a sentence, in the active language (``5,00 RON`` in Romanian)."""
        return _tariff_summary(
            get_language(),
            self.secured_parking.currency,
            self.free_minutes,
            self.period_minutes,
            self.price_per_period.quantize(CENT, ROUND_HALF_UP),
            self.daily_cap,
        )

    def hold_amount(self) -> Decimal:
        """What a start holds on the card unless the parking sets it: a day's stay."""
        if self.daily_cap is not None:
            return self.daily_cap
        periods = -(-DAY // timedelta(minutes=self.period_minutes))
        per_day = min(periods, settings.PAYMENT_HOLD_PERIODS) * self.price_per_period
        return per_day.quantize(CENT, ROUND_HALF_UP)

    def amount_for(self, duration: timedelta) -> Decimal:
        """What a stay of ``duration`` costs, rounded half-up to the cent."""
        return TariffTerms.of(self).amount_for(duration)

    def terms(self) -> dict[str, object]:
        """The tariff as a session keeps it from its start (``ParkingSession.tariff_terms``)."""
        return TariffTerms.of(self).as_json()


@dataclass(frozen=True, slots=True)
class TariffTerms:
    """A tariff's prices, as agreed when a session started: editing the tariff later does
    not change what that session pays."""

    free_minutes: int
    period_minutes: int
    price_per_period: Decimal
    daily_cap: Decimal | None

    @classmethod
    def of(cls, tariff: Tariff) -> "TariffTerms":
        return cls(
            tariff.free_minutes, tariff.period_minutes, tariff.price_per_period, tariff.daily_cap
        )

    @classmethod
    def from_json(cls, terms: dict[str, Any]) -> "TariffTerms":
        cap = terms["daily_cap"]
        return cls(
            int(terms["free_minutes"]),
            int(terms["period_minutes"]),
            Decimal(terms["price_per_period"]),
            None if cap is None else Decimal(cap),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "free_minutes": self.free_minutes,
            "period_minutes": self.period_minutes,
            "price_per_period": str(self.price_per_period),
            "daily_cap": None if self.daily_cap is None else str(self.daily_cap),
        }

    def amount_for(self, duration: timedelta) -> Decimal:
        """What a stay of ``duration`` costs, rounded half-up to the cent."""
        if duration <= timedelta(minutes=self.free_minutes):
            return Decimal("0.00")
        full_days, rest = divmod(duration, DAY)
        total = full_days * self._charge_within_a_day(DAY) + self._charge_within_a_day(rest)
        return total.quantize(CENT, ROUND_HALF_UP)

    def _charge_within_a_day(self, span: timedelta) -> Decimal:
        if span <= timedelta(0):
            return Decimal("0")
        started_periods = -(-span // timedelta(minutes=self.period_minutes))
        charge = started_periods * self.price_per_period
        if self.daily_cap is not None:
            charge = min(charge, self.daily_cap)
        return charge


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed to retries."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("driver"),
        on_delete=models.CASCADE,
        related_name="idempotency_records",
    )
    key = models.CharField(verbose_name=_("key"), max_length=255)
    request_fingerprint = models.CharField(verbose_name=_("request fingerprint"), max_length=64)
    response_status = models.PositiveSmallIntegerField(verbose_name=_("response status"))
    response_body = models.JSONField(verbose_name=_("response body"))
    # What the request passes on to another system (a barrier gateway's request id), so a
    # retry after a failure asks it again under the same id and it acts once.
    request_id = models.UUIDField(verbose_name=_("request id"), default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(verbose_name=_("created at"), db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["driver", "key"], name="idempotency_key_per_driver"),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key!r} of {self.driver_id}"
