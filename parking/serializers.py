from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from parking.models import CENT, ParkingSession, SecuredParking, SessionType, State
from parking_api.serializers import StrictIntegerField, StrictSerializer
from smart_keys.models import AccessPoint
from smart_keys.serializers import SmartKeySerializer, UtcSecondsDateTimeField


class ParkingSessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=SessionType.choices)
    state = serializers.SerializerMethodField()
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField(allow_null=True)
    entrance_remaining_tries = serializers.IntegerField()
    exit_remaining_tries = serializers.IntegerField()

    @extend_schema_field(serializers.ChoiceField(choices=State.choices))
    def get_state(self, session: ParkingSession) -> str:
        return session.effective_state(self.context["now"])


class ParkingSessionBodySerializer(serializers.Serializer):
    """The body every session endpoint answers with: the seed's current-session document.

    Needs ``context={"now": …}``: the state and the amount due depend on the time."""

    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    parking_session = ParkingSessionSerializer(source="*")
    smart_key = SmartKeySerializer()

    @extend_schema_field(
        serializers.RegexField(r"^\d+\.\d{2}$", help_text="Two decimals, e.g. `4.17`.")
    )
    def get_amount(self, session: ParkingSession) -> str:
        return str(session.amount_due(self.context["now"]).quantize(CENT))


class StartParkingSessionSerializer(StrictSerializer):
    secured_parking_id = StrictIntegerField(min_value=1, max_value=2**63 - 1)

    def validate_secured_parking_id(self, value: int) -> SecuredParking:
        parking = SecuredParking.objects.filter(pk=value).first()
        if parking is None:
            raise serializers.ValidationError("No secured parking with this id.")
        return parking


class TariffSerializer(serializers.Serializer):
    summary = serializers.CharField()
    free_minutes = serializers.IntegerField()
    period_minutes = serializers.IntegerField()
    price_per_period = serializers.DecimalField(max_digits=10, decimal_places=4)
    daily_cap = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)


class SecuredParkingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    address = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    is_active = serializers.BooleanField()
    is_online = serializers.BooleanField()
    currency = serializers.CharField()
    tariff = TariffSerializer(allow_null=True)
    capacity = serializers.IntegerField()
    free_places = serializers.SerializerMethodField()

    def get_free_places(self, parking: SecuredParking) -> int:
        return max(parking.capacity - parking.occupied_places, 0)


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
            raise serializers.ValidationError("The session's key does not open this barrier.")
        return access_point
