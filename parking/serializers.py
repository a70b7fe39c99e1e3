from datetime import UTC, datetime

from rest_framework import serializers


class UtcSecondsDateTimeField(serializers.DateTimeField):
    """``2017-09-05T08:51:56+00:00``: UTC, whole seconds, ``+00:00`` rather than ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(UTC).replace(microsecond=0).isoformat()


class AccessPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mac_address = serializers.CharField()
    direction = serializers.CharField()


class SmartKeySerializer(serializers.Serializer):
    """The seed's ``smart_key`` object; ``GET smart_keys`` serves the same structure."""

    id = serializers.IntegerField()
    secured_parking_id = serializers.IntegerField()
    name = serializers.CharField(source="secured_parking.name")
    description = serializers.CharField()
    is_active = serializers.BooleanField(source="secured_parking.is_active")
    type = serializers.CharField()
    access_command = serializers.CharField()
    is_online = serializers.BooleanField(source="secured_parking.is_online")
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField()
    access_points = serializers.SerializerMethodField()

    def get_access_points(self, smart_key) -> list[dict]:
        return [
            {"access_point": AccessPointSerializer(access_point).data}
            for access_point in smart_key.access_points.all()
        ]


class ParkingSessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    state = serializers.CharField()
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField(allow_null=True)
    entrance_remaining_tries = serializers.IntegerField()
    exit_remaining_tries = serializers.IntegerField()


class ParkingSessionBodySerializer(serializers.Serializer):
    """The body every session endpoint answers with: the seed's current-session document."""

    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    parking_session = ParkingSessionSerializer(source="*")
    smart_key = SmartKeySerializer(allow_null=True)
