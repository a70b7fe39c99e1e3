"""The API's parking bodies. ``session_body`` is the one place a parking session
becomes the seed's current-session body, for every endpoint that answers with one; the
serializers below describe that body (and the parking list) for the OpenAPI schema."""

from datetime import datetime
from typing import Any

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
from smart_keys.models import AccessPoint, SmartKey
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


class StartParkingSessionSerializer(StrictSerializer):
    secured_parking_id = StrictIntegerField(min_value=1, max_value=2**63 - 1)

    def validate_secured_parking_id(self, value: int) -> SecuredParking:
        parking = SecuredParking.objects.filter(pk=value).first()
        if parking is None:
            raise serializers.ValidationError(_("No secured parking with this id."))
        return parking


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


class OpenBarrierSerializer(StrictSerializer):
    """Optional body of ``open_barrier``."""

    # Validated against context["smart_key"], the session's key.

    access_point_id = StrictIntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="Which of the key's barriers to open; without it the gateway is given "
        "all of them and opens the one where the car waits.",
    )

    def validate_access_point_id(self, value: int) -> AccessPoint:
        access_point = self.context["smart_key"].access_points.filter(pk=value).first()
        if access_point is None:
            raise serializers.ValidationError(_("The session's key does not open this barrier."))
        return access_point
