"""The API's parking bodies. ``session_body`` is the one place a parking session
becomes the seed's current-session body, for every endpoint that answers with one; the
serializers below describe that body (and the parking list) for the OpenAPI schema."""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from rest_framework import serializers

from core.datetimes import iso_seconds
from core.serializers import (
    CentsField,
    CurrencyField,
    MoneyField,
    StrictIntegerField,
    StrictSerializer,
    UtcSecondsDateTimeField,
    money_text,
)
from parking.models import CENT, ParkingSession, SecuredParking, SessionType, State, Tariff
from smart_keys.models import AccessPoint, Direction, SmartKey
from smart_keys.serializers import SmartKeySerializer


def session_body(session: ParkingSession, now: datetime) -> dict[str, Any]:
    """The seed's body for ``session``, loaded as ``ParkingSession.objects.with_body()``
    (or ``parking.selectors.current_session_for``) loads it. State and amount are as of ``now``."""
    return {
        "amount": str(session.amount_due(now).quantize(CENT)),
        "currency": session.currency,
        "parking_session": {
            "id": session.pk,
            "type": session.type,
            "state": session.effective_state(now),
            "start_time": iso_seconds(session.start_time),
            "end_time": iso_seconds(session.end_time),
            "entrance_remaining_tries": session.entrance_remaining_tries,
            "exit_remaining_tries": session.exit_remaining_tries,
        },
        "smart_key": smart_key_body(session.smart_key, session.secured_parking),
    }


def smart_key_body(smart_key: SmartKey, parking: SecuredParking) -> dict[str, Any]:
    """The seed's ``smart_key`` object. ``parking`` is the key's: a session's key belongs to
    the session's parking (a foreign key on both columns says so)."""
    return {
        "id": smart_key.pk,
        "secured_parking_id": parking.pk,
        "name": parking.name,
        "description": smart_key.description,
        "is_active": parking.is_active,
        "type": smart_key.type,
        "access_command": smart_key.access_command,
        "is_online": parking.is_online,
        "start_time": iso_seconds(smart_key.start_time),
        "end_time": iso_seconds(smart_key.end_time),
        "access_points": [
            {
                "access_point": {
                    "id": access_point.pk,
                    "mac_address": access_point.mac_address,
                    "direction": access_point.direction,
                }
            }
            for access_point in smart_key.ordered_access_points
        ],
    }


def parking_body(parking: SecuredParking) -> dict[str, Any]:
    """An item of the parking list, loaded with ``with_occupancy()`` and its tariff: what
    ``SecuredParkingSerializer`` describes, built without DRF's per-field machinery (the
    list is the app's screen for finding a place; a page holds 20)."""
    tariff = getattr(parking, "tariff", None)
    return {
        "id": parking.pk,
        "name": parking.name,
        "description": parking.description,
        "address": parking.address,
        "latitude": None if parking.latitude is None else float(parking.latitude),
        "longitude": None if parking.longitude is None else float(parking.longitude),
        "is_active": parking.is_active,
        "is_online": parking.is_online,
        "currency": parking.currency,
        "tariff": None if tariff is None else _tariff_body(tariff),
        "capacity": parking.capacity,
        "free_places": max(parking.capacity - parking.occupied_places, 0),
    }


def _tariff_body(tariff: Tariff) -> dict[str, Any]:
    return {
        "summary": tariff.summary,
        "free_minutes": tariff.free_minutes,
        "period_minutes": tariff.period_minutes,
        "price_per_period": money_text(tariff.price_per_period),
        "daily_cap": None if tariff.daily_cap is None else money_text(tariff.daily_cap),
    }


class ParkingSessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=SessionType.choices)
    state = serializers.ChoiceField(choices=State.choices, read_only=True)
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField(allow_null=True)
    entrance_remaining_tries = serializers.IntegerField()
    exit_remaining_tries = serializers.IntegerField()


class ParkingSessionBodySerializer(serializers.Serializer):
    """The body every session endpoint answers with: the seed's current-session one."""

    amount = CentsField(
        help_text="Due so far while `active`; fixed from `exit` on; `0.00` when cancelled."
    )
    currency = CurrencyField()
    parking_session = ParkingSessionSerializer()
    smart_key = SmartKeySerializer()


def barrier_among(access_points: QuerySet[AccessPoint], access_point_id: int) -> AccessPoint:
    """The barrier ``access_point_id`` names, if it is one of ``access_points``: those the
    call's command may name (or its gateway open)."""
    access_point = access_points.filter(pk=access_point_id).first()
    if access_point is None:
        raise serializers.ValidationError(
            {"access_point_id": [_("The session's key does not open this barrier.")]}
        )
    return access_point


class BarrierChoiceSerializer(StrictSerializer):
    """The optional body of the calls that issue an access command or open a barrier: the
    barrier the phone sees over Bluetooth LE, which the command then names alone.

    Context: ``access_points``, the barriers the call may name, and ``required``, the
    parking's ``access_point_required``."""

    access_point_id = StrictIntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="The barrier the phone sees over Bluetooth LE: the access command then "
        "opens that barrier alone (without it, every barrier of the direction). Required "
        "at parkings that set `access_point_required`.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return with_barrier(
            attrs, self.context["access_points"], required=self.context.get("required", False)
        )


def with_barrier(
    attrs: dict[str, Any], access_points: QuerySet[AccessPoint], *, required: bool
) -> dict[str, Any]:
    """``attrs`` with ``access_point_id`` turned into its barrier, checked against
    ``access_points``; a 400 when it is missing and ``required``."""
    if "access_point_id" in attrs:
        return {**attrs, "access_point_id": barrier_among(access_points, attrs["access_point_id"])}
    if required:
        raise serializers.ValidationError(
            {
                "access_point_id": [
                    serializers.ErrorDetail(
                        _(
                            "This parking needs the barrier the phone sees: send its "
                            "access_point_id."
                        ),
                        code="required",
                    )
                ]
            }
        )
    return attrs


class StartParkingSessionSerializer(BarrierChoiceSerializer):
    secured_parking_id = StrictIntegerField(min_value=1, max_value=2**63 - 1)

    def validate_secured_parking_id(self, value: int) -> SecuredParking:
        parking = SecuredParking.objects.filter(pk=value).first()
        if parking is None:
            raise serializers.ValidationError(_("No secured parking with this id."))
        return parking

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The first command names an entrance barrier of the parking being started at.
        parking = attrs["secured_parking_id"]
        entrances = parking.access_points.filter(direction=Direction.ENTRANCE)
        return with_barrier(attrs, entrances, required=parking.access_point_required)


class TariffSerializer(serializers.Serializer):
    summary = serializers.CharField(help_text="The tariff in words, for people.")
    free_minutes = serializers.IntegerField(
        min_value=0, help_text="Stays up to this long are free; longer ones pay from the start."
    )
    period_minutes = serializers.IntegerField(
        min_value=1, help_text="Billing period; started ones count."
    )
    price_per_period = MoneyField(help_text="Price of each started period.")
    daily_cap = MoneyField(
        allow_null=True, help_text="Most a stay pays per 24 hours; null for no cap."
    )


class SecuredParkingSerializer(serializers.Serializer):
    """Describes ``parking_body`` for the OpenAPI schema."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    address = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    is_active = serializers.BooleanField()
    is_online = serializers.BooleanField()
    currency = CurrencyField()
    tariff = TariffSerializer(allow_null=True)
    capacity = serializers.IntegerField()
    free_places = serializers.IntegerField(min_value=0)


class OpenBarrierSerializer(BarrierChoiceSerializer):
    """Optional body of ``open_barrier``; ``access_points`` in its context are the key's."""

    access_point_id = StrictIntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="Which of the key's barriers to open; without it the gateway is given "
        "all of them and opens the one where the car waits.",
    )


class ReceiptOperatorSerializer(serializers.Serializer):
    name = serializers.CharField()
    legal_name = serializers.CharField()
    tax_id = serializers.CharField(help_text="The operator's tax id (CUI).")


class ReceiptParkingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()


class ReceiptTariffSerializer(serializers.Serializer):
    free_minutes = serializers.IntegerField()
    period_minutes = serializers.IntegerField()
    price_per_period = serializers.CharField()
    daily_cap = serializers.CharField(allow_null=True)


class ReceiptRefundSerializer(serializers.Serializer):
    amount = serializers.CharField()
    vat_amount = serializers.CharField(
        help_text="The VAT it gives back: that of what was kept before it less that of what "
        "is kept after."
    )
    refunded_at = serializers.CharField()
    reference = serializers.CharField(help_text="Stripe's refund id (re_…).")


class ReceiptPaymentSerializer(serializers.Serializer):
    state = serializers.CharField()
    reference = serializers.CharField(help_text="The provider's reference (Stripe PaymentIntent).")
    captured_amount = serializers.CharField()
    captured_vat_amount = serializers.CharField(help_text="The VAT included in what was captured.")
    refunded_amount = serializers.CharField()
    outstanding_amount = serializers.CharField()
    refunds = ReceiptRefundSerializer(
        many=True,
        help_text="Money given back, oldest first. The receipt's amount is what was captured "
        "less these, and its VAT the captured VAT less theirs.",
    )


class ReceiptSerializer(serializers.Serializer):
    """A finished session's receipt (parking.receipts); amounts include VAT."""

    number = serializers.CharField()
    issued_at = serializers.CharField()
    operator = ReceiptOperatorSerializer()
    secured_parking = ReceiptParkingSerializer()
    parking_session_id = serializers.IntegerField()
    start_time = serializers.CharField()
    end_time = serializers.CharField()
    tariff = ReceiptTariffSerializer(
        allow_null=True, help_text="The tariff agreed at entry; null for older sessions."
    )
    tariff_summary = serializers.CharField()
    currency = serializers.CharField()
    amount = serializers.CharField()
    vat_rate = serializers.CharField(allow_null=True, help_text="e.g. 0.2100 for 21%.")
    vat_amount = serializers.CharField()
    amount_without_vat = serializers.CharField()
    payment = ReceiptPaymentSerializer(allow_null=True)
