"""Template filters of the printable receipt, which shows the JSON receipt's values to people."""

from datetime import datetime
from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def receipt_time(value: str | None) -> datetime | None:
    """An API datetime (``2026-03-10T14:25:00+00:00``), for the ``date`` filter to format in
    the current time zone."""
    return datetime.fromisoformat(value) if value else None


@register.filter
def percent(rate: str | None) -> Decimal | None:
    """``"0.2100"`` → ``21``."""
    return (Decimal(rate) * 100).normalize() if rate is not None else None


@register.filter
def nonzero(amount: str | None) -> bool:
    """Whether a money string (``"0.00"``) is more than nothing."""
    return amount is not None and Decimal(amount) != 0
