from collections.abc import Mapping
from datetime import UTC, datetime

from rest_framework import serializers


def iso_seconds(value: datetime | None) -> str | None:
    """The API's datetimes: ``2017-09-05T08:51:56+00:00`` (UTC, whole seconds, ``+00:00``)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, such as ``amount`` or ``state`` sent by a client,
    instead of silently ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field cannot be set here."] for name in unknown}
                )
        return super().to_internal_value(data)


class EmptyBodySerializer(StrictSerializer):
    """For actions that take no input: an empty body or ``{}``."""


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: ``"5"``, ``5.0`` and ``true`` are type errors."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)
