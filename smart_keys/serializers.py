from datetime import UTC, datetime

from rest_framework import serializers

from smart_keys.models import SmartKey


class UtcSecondsDateTimeField(serializers.DateTimeField):
    """``2017-09-05T08:51:56+00:00``: UTC, whole seconds, ``+00:00`` rather than ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(UTC).replace(microsecond=0).isoformat()


class AccessPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mac_address = serializers.CharField()
    direction = serializers.CharField()


class SmartKeySerializer(serializers.Serializer):
    """The seed's ``smart_key`` object, shared by sessions and ``GET smart_keys``."""

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

    def get_access_points(self, smart_key: SmartKey) -> list[dict]:
        return [
            {"access_point": AccessPointSerializer(access_point).data}
            for access_point in smart_key.access_points.all()
        ]
