"""DRF building blocks every app's API uses: strict input, and the API's datetime format."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from core.datetimes import iso_seconds


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, such as ``amount`` or ``state`` sent by a client,
    instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [_("This field cannot be set here.")] for name in unknown}
                )
        return super().to_internal_value(data)


class EmptyBodySerializer(StrictSerializer):
    """For actions that take no input: an empty body or ``{}``."""


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: ``"5"``, ``5.0`` and ``true`` are type errors."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class UtcSecondsDateTimeField(serializers.DateTimeField):
    """``2017-09-05T08:51:56+00:00``: UTC, whole seconds, ``+00:00`` rather than ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return iso_seconds(value)
