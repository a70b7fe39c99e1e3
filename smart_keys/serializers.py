"""The shape of the seed's ``smart_key`` object, for the OpenAPI schema; the object itself
is written by parking.serializers.smart_key_body."""

from rest_framework import serializers

from core.serializers import UtcSecondsDateTimeField
from smart_keys.models import Direction, SmartKeyType


class AccessPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mac_address = serializers.CharField()
    direction = serializers.ChoiceField(choices=Direction.choices)


class AccessPointItemSerializer(serializers.Serializer):
    """``{"access_point": {...}}``: the seed wraps each access point in its own object."""

    access_point = AccessPointSerializer()


class SmartKeySerializer(serializers.Serializer):
    """The seed's ``smart_key`` object, shared by sessions and ``GET smart_keys``.

    ``name``, ``is_active`` and ``is_online`` are the key's parking's."""

    id = serializers.IntegerField()
    secured_parking_id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_active = serializers.BooleanField()
    type = serializers.ChoiceField(choices=SmartKeyType.choices)
    access_command = serializers.CharField()
    is_online = serializers.BooleanField()
    start_time = UtcSecondsDateTimeField()
    end_time = UtcSecondsDateTimeField()
    access_points = AccessPointItemSerializer(many=True)
