from decimal import Decimal
from typing import TYPE_CHECKING, Self

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

if TYPE_CHECKING:
    from accounts.models import User

CURRENCY_CODE_REGEX = r"^[A-Z]{3}$"


class SecuredParking(models.Model):
    """A barrier-controlled car park that drivers pay for per use."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Accepts new parking sessions.")
    is_online = models.BooleanField(
        default=False,
        help_text="Barriers open only on the backend's request; access commands are unusable.",
    )
    currency = models.CharField(
        max_length=3,
        default="RON",
        validators=[RegexValidator(CURRENCY_CODE_REGEX, "Use an ISO 4217 code such as RON.")],
    )
    capacity = models.PositiveIntegerField(default=100, help_text="Parking places.")
    entrance_tries = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Entrance attempts a parking session gets.",
    )
    exit_tries = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Exit attempts a parking session gets.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
        ]

    def __str__(self) -> str:
        return self.name


class State(models.TextChoices):
    ENTERING = "entering", "Entering"
    ACTIVE = "active", "Active"
    EXITING = "exiting", "Exiting"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = (State.ENTERING, State.ACTIVE, State.EXITING)


class SessionType(models.TextChoices):
    PAY_PER_USE = "pay_per_use", "Pay per use"


class ParkingSessionQuerySet(models.QuerySet["ParkingSession"]):
    def open(self) -> Self:
        return self.filter(state__in=OPEN_STATES)

    def for_driver(self, driver: "User") -> Self:
        return self.filter(driver=driver)


class ParkingSession(models.Model):
    """One stay of one driver in one secured parking, from the entrance barrier to payment."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="parking_sessions"
    )
    secured_parking = models.ForeignKey(
        SecuredParking, on_delete=models.PROTECT, related_name="parking_sessions"
    )
    smart_key = models.OneToOneField(
        "smart_keys.SmartKey",
        on_delete=models.PROTECT,
        related_name="parking_session",
        null=True,
        blank=True,
    )
    type = models.CharField(
        max_length=16, choices=SessionType.choices, default=SessionType.PAY_PER_USE
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ENTERING)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    entrance_remaining_tries = models.PositiveSmallIntegerField()
    exit_remaining_tries = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ParkingSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [
            models.Index(fields=["driver", "-start_time"], name="session_driver_start"),
            models.Index(fields=["secured_parking", "state"], name="session_parking_state"),
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
        ]

    def __str__(self) -> str:
        return f"Session #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES
