"""MAC addresses of BLE access points, in one canonical spelling: ``AA:BB:CC:DD:EE:FF``."""

import re
from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

CANONICAL_MAC_ADDRESS_REGEX = r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$"

# Spellings seen on barrier labels and in vendor tools: colons, dashes, Cisco dots or none.
_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")
_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_BARE = re.compile(r"^[0-9A-Fa-f]{12}$")


def normalize_mac_address(value: str) -> str:
    """Return ``value`` as ``AA:BB:CC:DD:EE:FF``, or raise ValidationError."""
    text = value.strip() if isinstance(value, str) else ""
    if not (_SEPARATED.match(text) or _DOTTED.match(text) or _BARE.match(text)):
        raise ValidationError(
            _("Enter a MAC address such as AA:BB:CC:DD:EE:FF."), code="invalid_mac_address"
        )
    digits = re.sub(r"[^0-9A-Fa-f]", "", text).upper()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


class MACAddressFormField(forms.CharField):
    """Cleans to the canonical spelling, so forms (and the admin's duplicate checks across
    inline rows) compare ``aa-bb-…`` and ``AA:BB:…`` as the same address."""

    def to_python(self, value: Any) -> str | None:
        value = super().to_python(value)
        return normalize_mac_address(value) if value else value


class MACAddressField(models.CharField):
    """A CharField that accepts any common MAC spelling and stores the canonical one."""

    description = "MAC address"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 17)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 17:
            del kwargs["max_length"]
        return name, path, args, kwargs

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        return super().formfield(**{"form_class": MACAddressFormField, **kwargs})

    def to_python(self, value: Any) -> str | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        return normalize_mac_address(value)

    def get_prep_value(self, value):
        # Lookups and saves use the canonical spelling, so "aa-bb-…" finds "AA:BB:…".
        value = super().get_prep_value(value)
        try:
            return normalize_mac_address(value) if value else value
        except ValidationError:
            return value
