from datetime import datetime

from rest_framework import serializers

from parking_api.serializers import iso_seconds
from smart_keys.models import Direction, SmartKeyType


class UtcSecondsDateTimeField(serializers.DateTimeField):
    """``2017-09-05T08:51:56+00:00``: UTC, whole seconds, ``+00:00`` rather than ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return iso_seconds(value)


class AccessPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mac_address = serializers.CharField()
    direction = serializers.ChoiceField(choices=Direction.choices)


class AccessPointItemSerializer(serializers.Serializer):
    """``{"access_point": {...}}``: the seed wraps each access point in its own object."""

    access_point = AccessPointSerializer(source="*")


class SmartKeySerializer(serializers.Serializer):
    """The seed's ``smart_key`` object, shared by sessions and ``GET smart_keys``."""

    id = serializers.IntegerField()
    secured_parking_id = serializers.IntegerField()
    name = serializers.CharField(source="secured_parking.name")
    description = serializers.CharField()
    is_active = serializers.BooleanField(source="secured_parking.is_active")
    type = serializers.ChoiceField(choices=SmartKeyType.choices)
    access_command = serializers.CharField()
    is_online = serializers.BooleanField(source="secured_parking.is_online")
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField()
    access_points = AccessPointItemSerializer(many=True, source="access_points.all")
