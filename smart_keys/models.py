from datetime import datetime, timedelta
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from smart_keys.access_commands import BarrierKey
from smart_keys.gateway_urls import validate_gateway_url
from smart_keys.mac_addresses import CANONICAL_MAC_ADDRESS_REGEX, MACAddressField
from smart_keys.secrets_at_rest import (
    decrypt_secret,
    seal_credential,
    unseal_credential,
)


class Direction(models.TextChoices):
    ENTRANCE = "entrance", _("Entrance")
    EXIT = "exit", _("Exit")


class AccessPoint(models.Model):
    """A barrier of a secured parking, opened over Bluetooth LE."""

    secured_parking = models.ForeignKey(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.CASCADE,
        related_name="access_points",
    )
    name = models.CharField(verbose_name=_("name"), max_length=100, blank=True)
    direction = models.CharField(
        verbose_name=_("direction"), max_length=8, choices=Direction.choices
    )
    mac_address = MACAddressField(
        _("MAC address"),
        unique=True,
        help_text=_("Any common spelling; stored as AA:BB:CC:DD:EE:FF."),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("access point")
        verbose_name_plural = _("access points")
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


class AccessPointKeyQuerySet(models.QuerySet["AccessPointKey"]):
    def current(self) -> Self:
        return self.filter(replaced_at__isnull=True)

    def elsewhere(self, public_key: str, access_point_id: int | None) -> Self:
        """``public_key`` registered on another access point, or retired on this one: each
        barrier makes its own key, and a retired key never comes back."""
        same = self.filter(public_key=public_key)
        return same.exclude(access_point_id=access_point_id, replaced_at__isnull=True)


class AccessPointKey(models.Model):
    """A barrier's own Ed25519 public key: its passage records are signed with the private
    half, which never leaves the barrier (docs/passage-record.md).

    Registered by an operator (the access point's page, or ``manage.py
    import_barrier_keys``). A replaced key still verifies the records it signed before its
    replacement, until ``accepted_until``: phones relay records late."""

    access_point = models.ForeignKey(
        AccessPoint,
        verbose_name=_("access point"),
        on_delete=models.PROTECT,
        related_name="barrier_keys",
    )
    key_id = models.CharField(
        _("key id"),
        max_length=8,
        help_text=_("First 4 bytes of SHA-256 of the public key, in hex."),
    )
    public_key = models.CharField(
        verbose_name=_("public key"),
        max_length=64,
        unique=True,
        help_text=_("Raw Ed25519 public key, in hex."),
    )
    registered_at = models.DateTimeField(verbose_name=_("registered at"))
    replaced_at = models.DateTimeField(
        verbose_name=_("replaced at"),
        null=True,
        blank=True,
        help_text=_("Records signed from then on with this key are refused."),
    )
    accepted_until = models.DateTimeField(
        verbose_name=_("accepted until"),
        null=True,
        blank=True,
        help_text=_("After its replacement, the key's earlier records are taken until then."),
    )

    received_through = models.PositiveBigIntegerField(
        verbose_name=_("received through"),
        default=0,
        help_text=_("Every record of this key up to this sequence number is held here."),
    )
    # How far ahead of the backend the barrier's clock is, at least (docs/passage-record.md,
    # "Barrier clocks"): the largest lead of barrier time over arrival among the records
    # received in BARRIER_CLOCK_WINDOW; negative when behind or only late phones relayed.
    clock_offset = models.IntegerField(
        verbose_name=_("clock offset (s)"),
        null=True,
        blank=True,
        help_text=_("How far ahead of the backend the barrier's clock runs, in seconds."),
    )
    clock_estimated_at = models.DateTimeField(
        verbose_name=_("clock estimated at"), null=True, blank=True
    )

    objects = AccessPointKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("barrier key")
        verbose_name_plural = _("barrier keys")
        ordering = ["access_point_id", "-registered_at", "-id"]
        indexes = [models.Index(fields=["key_id"], name="barrier_key_id")]
        constraints = [
            models.UniqueConstraint(
                fields=["access_point"],
                condition=Q(replaced_at__isnull=True),
                name="one_current_key_per_barrier",
            ),
            models.CheckConstraint(
                condition=Q(public_key__regex=r"^[0-9a-f]{64}$"),
                name="barrier_key_hex",
            ),
            models.CheckConstraint(
                condition=Q(replaced_at__isnull=True, accepted_until__isnull=True)
                | Q(replaced_at__isnull=False, accepted_until__gte=F("replaced_at")),
                name="barrier_key_replacement_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"Barrier key {self.key_id} of {self.access_point_id}"

    @property
    def is_current(self) -> bool:
        return self.replaced_at is None

    def is_drifting(self, tolerance: timedelta) -> bool:
        """Known to run ahead by more than ``tolerance``. An estimate below zero proves
        nothing: the clock may be behind, or its records were relayed late."""
        return self.clock_offset is not None and self.clock_offset > tolerance.total_seconds()

    def takes_record_signed_at(self, signed_at: datetime, now: datetime) -> bool:
        """Whether a record this key signed at ``signed_at`` is evidence: always for the
        barrier's current key; for a replaced one, if signed before the replacement and
        received within the overlap."""
        if self.replaced_at is None:
            return True
        assert self.accepted_until is not None  # barrier_key_replacement_complete
        return signed_at < self.replaced_at and now < self.accepted_until


class PassageRecord(models.Model):
    """One opening as a barrier signed it (docs/passage-record.md), relayed by a phone:
    the evidence of a passage. Stored once per barrier key and sequence number; never
    changed, but for the session it is found to be about."""

    barrier_key = models.ForeignKey(
        AccessPointKey,
        verbose_name=_("barrier key"),
        on_delete=models.PROTECT,
        related_name="records",
    )
    access_point = models.ForeignKey(
        AccessPoint,
        verbose_name=_("access point"),
        on_delete=models.PROTECT,
        related_name="passage_records",
    )
    # The access point's, kept on the row: the back office lists one operator's records
    # newest first from an index.
    secured_parking = models.ForeignKey(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.PROTECT,
        related_name="passage_records",
    )
    sequence = models.PositiveBigIntegerField(verbose_name=_("sequence"))
    direction = models.CharField(
        verbose_name=_("direction"), max_length=8, choices=Direction.choices
    )
    # As the barrier signed them; the session and key are linked when they exist and
    # belong together at the barrier's parking.
    named_smart_key_id = models.PositiveBigIntegerField(verbose_name=_("smart key id signed"))
    named_session_id = models.PositiveBigIntegerField(verbose_name=_("session id signed"))
    command_counter = models.PositiveBigIntegerField(verbose_name=_("command counter"))
    smart_key = models.ForeignKey(
        "SmartKey",
        verbose_name=_("smart key"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="passage_records",
    )
    parking_session = models.ForeignKey(
        "parking.ParkingSession",
        verbose_name=_("parking session"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="passage_records",
    )
    barrier_time = models.DateTimeField(
        verbose_name=_("barrier time"), help_text=_("By the barrier's clock.")
    )
    passed_at = models.DateTimeField(
        verbose_name=_("passed at"),
        help_text=_("The barrier time corrected for the barrier's clock offset."),
    )
    received_at = models.DateTimeField(verbose_name=_("received at"))
    record = models.CharField(
        verbose_name=_("record"), max_length=200, help_text=_("As signed, in base64url.")
    )

    class Meta:
        verbose_name = _("passage record")
        verbose_name_plural = _("passage records")
        ordering = ["-passed_at", "-id"]
        indexes = [
            models.Index(fields=["smart_key", "command_counter"], name="passage_command"),
            models.Index(fields=["parking_session", "passed_at"], name="passage_session"),
            models.Index(fields=["barrier_key", "received_at"], name="passage_barrier_received"),
            models.Index(fields=["-passed_at", "-id"], name="passage_time"),
            models.Index(fields=["secured_parking", "-passed_at"], name="passage_parking_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["barrier_key", "sequence"], name="one_record_per_barrier_sequence"
            ),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="passage_sequence_positive"),
            models.CheckConstraint(
                condition=Q(direction__in=Direction.values), name="passage_direction_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Passage {self.sequence} at {self.access_point_id}"


class SmartKeyType(models.TextChoices):
    SESSION_ACCESS = "session_access", _("Session access")


class SmartKey(models.Model):
    """A time-bound credential a driver's phone sends to the barriers of one parking."""

    # Empty once its session is anonymised (parking.services.accounts).
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("driver"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="smart_keys",
    )
    secured_parking = models.ForeignKey(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.PROTECT,
        related_name="smart_keys",
    )
    type = models.CharField(
        verbose_name=_("type"),
        max_length=32,
        choices=SmartKeyType.choices,
        default=SmartKeyType.SESSION_ACCESS,
    )
    description = models.CharField(verbose_name=_("description"), max_length=255, blank=True)
    start_time = models.DateTimeField(verbose_name=_("start time"))
    end_time = models.DateTimeField(verbose_name=_("end time"))
    access_command = models.TextField(verbose_name=_("access command"), blank=True)
    command_counter = models.PositiveIntegerField(
        verbose_name=_("command counter"),
        default=0,
        help_text=_("Counter of the last access command issued; barriers refuse replays."),
    )
    access_points = models.ManyToManyField(
        AccessPoint, verbose_name=_("access points"), related_name="smart_keys", blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    # Set only by the reads that load them, ordered by id (parking's session reads).
    ordered_access_points: list[AccessPoint]

    class Meta:
        verbose_name = _("smart key")
        verbose_name_plural = _("smart keys")
        ordering = ["-start_time", "-id"]
        indexes = [
            models.Index(fields=["driver", "end_time"], name="smart_key_driver_end"),
            # The back office's key list, newest first: everyone's, and one operator's.
            models.Index(fields=["-start_time", "-id"], name="smart_key_start"),
            models.Index(fields=["secured_parking", "-start_time"], name="smart_key_parking_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gte=F("start_time")), name="smart_key_window_ordered"
            ),
            # What a parking session's composite foreign key to (key, parking) points at.
            models.UniqueConstraint(
                fields=["id", "secured_parking"], name="smart_key_id_with_parking"
            ),
        ]

    def __str__(self) -> str:
        owner = self.driver or "an anonymised driver"
        return f"{self.get_type_display()} key #{self.pk} for {owner}"


class KeyPairState(models.TextChoices):
    """What the last rotation or switch wrote. Which key signs at a given moment is read
    from the times (``signs_at``): a routine switch takes effect when its time comes,
    without a write."""

    NEXT = "next", _("Next")
    CURRENT = "current", _("Current")
    RETIRED = "retired", _("Retired")


class ParkingKeyPairQuerySet(models.QuerySet["ParkingKeyPair"]):
    def current(self) -> Self:
        return self.filter(state=KeyPairState.CURRENT)

    def signing(self, now: datetime) -> Self:
        """The key that signs at ``now``: the current one, or the next once its time came."""
        still_current = Q(retired_at__isnull=True) | Q(retired_at__gt=now)
        return self.filter(
            Q(still_current, state=KeyPairState.CURRENT)
            | Q(state=KeyPairState.NEXT, signs_from__lte=now)
        ).order_by("-signs_from", "-id")

    def trusted(self, now: datetime) -> Self:
        """What barriers trust: the signing key, the next one (published ahead of its
        switch) and a rotated-out one still inside its overlap."""
        return self.filter(Q(accepted_until__isnull=True) | Q(accepted_until__gt=now))


class ParkingKeyPair(models.Model):
    """The Ed25519 key pair that signs one parking's access commands.

    The private half never leaves the backend and is stored encrypted; barriers are
    provisioned with the public half (``manage.py export_barrier_keys``). A routine
    rotation publishes a *next* pair that signs from ``signs_from`` on; the pair it replaces
    signs until then (its ``retired_at``) and stays trusted until ``accepted_until``."""

    secured_parking = models.ForeignKey(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.CASCADE,
        related_name="key_pairs",
    )
    key_id = models.CharField(
        _("key id"),
        max_length=8,
        help_text=_("First 4 bytes of SHA-256 of the public key, in hex."),
    )
    public_key = models.CharField(
        verbose_name=_("public key"), max_length=64, help_text=_("Raw Ed25519 public key, in hex.")
    )
    encrypted_private_key = models.TextField(
        verbose_name=_("encrypted private key"), editable=False
    )
    state = models.CharField(verbose_name=_("state"), max_length=8, choices=KeyPairState.choices)
    created_at = models.DateTimeField(verbose_name=_("created at"))
    signs_from = models.DateTimeField(
        verbose_name=_("signs from"), help_text=_("Commands are signed with this key from then.")
    )
    retired_at = models.DateTimeField(
        verbose_name=_("retired at"),
        null=True,
        blank=True,
        help_text=_("Commands are signed with this key until then."),
    )
    accepted_until = models.DateTimeField(
        verbose_name=_("accepted until"),
        null=True,
        blank=True,
        help_text=_("After rotation, barriers trust this key until then."),
    )

    objects = ParkingKeyPairQuerySet.as_manager()

    class Meta:
        verbose_name = _("parking key pair")
        verbose_name_plural = _("parking key pairs")
        ordering = ["secured_parking_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["secured_parking"],
                condition=Q(state=KeyPairState.CURRENT),
                name="one_current_key_pair_per_parking",
            ),
            models.UniqueConstraint(
                fields=["secured_parking"],
                condition=Q(state=KeyPairState.NEXT),
                name="one_next_key_pair_per_parking",
            ),
            models.UniqueConstraint(
                fields=["secured_parking", "key_id"], name="key_id_unique_per_parking"
            ),
            models.CheckConstraint(
                condition=Q(retired_at__isnull=True, accepted_until__isnull=True)
                | Q(retired_at__isnull=False, accepted_until__gte=F("retired_at")),
                name="key_pair_retirement_complete",
            ),
            models.CheckConstraint(
                condition=Q(state=KeyPairState.CURRENT)
                | Q(state=KeyPairState.NEXT, retired_at__isnull=True)
                | Q(state=KeyPairState.RETIRED, retired_at__isnull=False),
                name="key_pair_state_matches_retirement",
            ),
        ]

    def __str__(self) -> str:
        return f"Key {self.key_id} of parking #{self.secured_parking_id} ({self.state})"

    @property
    def is_current(self) -> bool:
        return self.state == KeyPairState.CURRENT

    def signs_at(self, now: datetime) -> bool:
        """The row's side of ``ParkingKeyPairQuerySet.signing``."""
        if self.state == KeyPairState.CURRENT:
            return self.retired_at is None or now < self.retired_at
        return self.state == KeyPairState.NEXT and self.signs_from <= now

    def is_next_at(self, now: datetime) -> bool:
        """Published to barriers, not signing yet."""
        return self.state == KeyPairState.NEXT and now < self.signs_from

    def is_trusted_at(self, now: datetime) -> bool:
        return self.accepted_until is None or now < self.accepted_until

    def private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(decrypt_secret(self.encrypted_private_key))

    def barrier_key(self) -> BarrierKey:
        return BarrierKey(bytes.fromhex(self.public_key), accepted_until=self.accepted_until)


class BarrierGateway(models.Model):
    """The HTTP service that opens an online parking's barriers at the backend's request."""

    secured_parking = models.OneToOneField(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.CASCADE,
        related_name="barrier_gateway",
    )
    url = models.URLField(
        "URL",
        max_length=500,
        validators=[validate_gateway_url],
        help_text=_("Open requests are POSTed here: https, on a public address."),
    )
    encrypted_credential = models.TextField(
        verbose_name=_("encrypted credential"), blank=True, editable=False
    )
    is_enabled = models.BooleanField(verbose_name=_("is enabled"), default=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("barrier gateway")
        verbose_name_plural = _("barrier gateways")

    def __str__(self) -> str:
        return f"Barrier gateway of parking #{self.secured_parking_id}"

    @property
    def credential(self) -> str:
        """The bearer token the gateway expects; stored encrypted together with the URL it
        was entered for, and empty once the URL changed: it is never sent to another host."""
        if not self.encrypted_credential:
            return ""
        return unseal_credential(self.encrypted_credential, url=self.url)

    @credential.setter
    def credential(self, value: str) -> None:
        """Set it after the URL: it is bound to the URL of the moment."""
        self.encrypted_credential = seal_credential(value, url=self.url) if value else ""


class AccessEvent(models.TextChoices):
    COMMAND_ISSUED = "command_issued", _("Command issued")
    ENTRANCE_TRY = "entrance_try", _("Entrance try")
    EXIT_TRY = "exit_try", _("Exit try")
    OPEN_REQUEST = "open_request", _("Open request")
    PASSAGE = "passage", _("Passage")
    ANOMALY = "anomaly", _("Anomaly")


class AccessResult(models.TextChoices):
    ISSUED = "issued", _("Issued")
    GRANTED = "granted", _("Granted")
    REFUSED = "refused", _("Refused")
    OPENED = "opened", _("Opened")
    GATEWAY_ERROR = "gateway_error", _("Gateway error")
    GATEWAY_TIMEOUT = "gateway_timeout", _("Gateway timeout")
    GATEWAY_UNREACHABLE = "gateway_unreachable", _("Gateway unreachable")
    PASSED = "passed", _("Passed")
    FLAGGED = "flagged", _("Flagged")


class AccessLogEntry(models.Model):
    """One issued command, try or open request: who, which session, where, what came of it.

    Written by the services, never changed; operators read it in the admin."""

    created_at = models.DateTimeField(verbose_name=_("created at"), db_index=True)
    event = models.CharField(verbose_name=_("event"), max_length=16, choices=AccessEvent.choices)
    result = models.CharField(verbose_name=_("result"), max_length=20, choices=AccessResult.choices)
    direction = models.CharField(
        verbose_name=_("direction"), max_length=8, choices=Direction.choices
    )
    # Empty once anonymised (account deleted, or past the personal data retention).
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("driver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_log_entries",
    )
    secured_parking = models.ForeignKey(
        "parking.SecuredParking",
        verbose_name=_("secured parking"),
        on_delete=models.PROTECT,
        related_name="access_log_entries",
    )
    # Empty only for an anomaly about no session (a passage naming a session that is not
    # there): every issued command, try, open request and passage has both.
    parking_session = models.ForeignKey(
        "parking.ParkingSession",
        verbose_name=_("parking session"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_log_entries",
    )
    smart_key = models.ForeignKey(
        SmartKey,
        verbose_name=_("smart key"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_log_entries",
    )
    access_point = models.ForeignKey(
        AccessPoint,
        verbose_name=_("access point"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="access_log_entries",
    )
    detail = models.CharField(verbose_name=_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log entries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="access_log_time"),
            models.Index(fields=["secured_parking", "-created_at"], name="access_log_parking_time"),
            models.Index(fields=["parking_session", "-created_at"], name="access_log_session_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event__in=AccessEvent.values), name="access_log_event_valid"
            ),
            models.CheckConstraint(
                condition=Q(result__in=AccessResult.values), name="access_log_result_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} {self.get_result_display().lower()} #{self.pk}"
