from django.conf import settings
from django.db import models
from django.db.models import F, Q

from smart_keys.mac_addresses import CANONICAL_MAC_ADDRESS_REGEX, MACAddressField


class Direction(models.TextChoices):
    ENTRANCE = "entrance", "Entrance"
    EXIT = "exit", "Exit"


class AccessPoint(models.Model):
    """A barrier of a secured parking, opened over Bluetooth LE."""

    secured_parking = models.ForeignKey(
        "parking.SecuredParking", on_delete=models.CASCADE, related_name="access_points"
    )
    name = models.CharField(max_length=100, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    mac_address = MACAddressField(
        "MAC address", unique=True, help_text="Any common spelling; stored as AA:BB:CC:DD:EE:FF."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["secured_parking_id", "direction", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mac_address__regex=CANONICAL_MAC_ADDRESS_REGEX),
                name="access_point_mac_address_canonical",
            ),
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="access_point_direction_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.mac_address}"


class SmartKeyType(models.TextChoices):
    SESSION_ACCESS = "session_access", "Session access"


class SmartKey(models.Model):
    """A time-bound credential a driver's phone sends to the barriers of one parking."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="smart_keys"
    )
    secured_parking = models.ForeignKey(
        "parking.SecuredParking", on_delete=models.PROTECT, related_name="smart_keys"
    )
    type = models.CharField(
        max_length=32, choices=SmartKeyType.choices, default=SmartKeyType.SESSION_ACCESS
    )
    description = models.CharField(max_length=255, blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    access_command = models.TextField(blank=True)
    access_points = models.ManyToManyField(AccessPoint, related_name="smart_keys", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [models.Index(fields=["driver", "end_time"], name="smart_key_driver_end")]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gte=F("start_time")), name="smart_key_window_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} key #{self.pk} for {self.driver}"
