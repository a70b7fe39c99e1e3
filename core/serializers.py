"""DRF building blocks every app's API uses: strict input, and the API's datetime and money
formats."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
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


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: ``1`` and ``true`` are type errors, not ``"1"``."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class UtcSecondsDateTimeField(serializers.DateTimeField):
    """``2017-09-05T08:51:56+00:00``: UTC, whole seconds, ``+00:00`` rather than ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return iso_seconds(value)


# Money on the wire: a string with two decimals, more only for a sub-cent price.
MONEY_PATTERN = r"^\d+\.\d{2,4}$"
CENTS_PATTERN = r"^\d+\.\d{2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"


def money_text(value: Decimal) -> str:
    """``5`` → ``"5.00"``, ``0.1250`` → ``"0.125"``: two decimals, and the further ones a
    sub-cent price has."""
    cents = value.quantize(Decimal("0.01"))
    return str(cents if cents == value else value.normalize())


@extend_schema_field({"type": "string", "pattern": MONEY_PATTERN, "examples": ["5.00", "0.125"]})
class MoneyField(serializers.DecimalField):
    """A non-negative amount or price as ``money_text`` writes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=4, **kwargs)

    def to_representation(self, value: Decimal) -> str:
        return money_text(value)


@extend_schema_field({"type": "string", "pattern": CURRENCY_PATTERN, "examples": ["RON"]})
class CurrencyField(serializers.CharField):
    """An ISO 4217 code, e.g. ``RON``."""


@extend_schema_field({"type": "string", "pattern": CENTS_PATTERN, "examples": ["4.17"]})
class CentsField(serializers.CharField):
    """An amount due: ``money_text`` of a sum rounded to the cent, so two decimals."""
