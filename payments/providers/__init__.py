"""The payment provider behind a small interface: services call :func:`provider` and these
methods only, so another provider (Netopia, …) is one more module here and a setting
(``PAYMENT_PROVIDER``), with no change to sessions or services.

Amounts cross this interface as ``Decimal`` in the major unit; an implementation converts to
what its API wants. Every call that changes money takes an ``idempotency_key``: the same key
sent again must not move money twice."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class ProviderUnavailable(Exception):
    """The provider could not be reached or did not answer in time."""


class ProviderRefused(Exception):
    """The provider refused the operation (a declined card, a hold that is gone)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CardRefused(ProviderRefused):
    """The card itself was refused (declined, authentication needed off-session)."""


class InvalidEvent(Exception):
    """A webhook whose signature does not verify, or that is not an event."""


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    occurred_at: datetime
    # The hold or charge it is about (a Stripe PaymentIntent), when it is about one.
    payment_reference: str
    # For disputes: their status ("needs_response", "won", "lost", …).
    dispute_status: str
    payload: dict[str, Any]


class HoldStatus(StrEnum):
    AUTHORIZED = "authorized"
    REQUIRES_ACTION = "requires_action"
    DECLINED = "declined"
    CAPTURED = "captured"
    GONE = "gone"  # cancelled or expired at the provider


@dataclass(frozen=True)
class Hold:
    reference: str
    status: HoldStatus
    client_secret: str = ""
    failure_code: str = ""
    failure_message: str = ""
    # What the provider took and kept on it (captured less refunded), once captured.
    kept: Decimal = Decimal("0")


@dataclass(frozen=True)
class ProviderRefund:
    """A refund the provider made (or is making) on one of its charges."""

    reference: str
    amount: Decimal
    created_at: datetime
    # The key it was asked under, when we asked for it; empty for one made elsewhere (the
    # provider's dashboard).
    idempotency_key: str = ""


@dataclass(frozen=True)
class SavedCard:
    reference: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class CardSetupStart:
    reference: str
    client_secret: str


class PaymentProvider(Protocol):
    name: str

    def create_customer(self, *, email: str, idempotency_key: str) -> str: ...

    def start_card_setup(self, *, customer: str) -> CardSetupStart: ...

    def finished_card_setup(self, *, setup: str, customer: str) -> SavedCard | None:
        """The card of a setup the driver completed, attached to ``customer``; ``None``
        while it is not completed."""
        ...

    def remove_card(self, *, card: str) -> None: ...

    def delete_customer(self, *, customer: str) -> None:
        """The customer and the cards saved with them gone at the provider."""
        ...

    def place_hold(
        self,
        *,
        customer: str,
        card: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> Hold:
        """A hold placed, refused by the card (DECLINED) or waiting for 3-D Secure."""
        ...

    def hold(self, *, reference: str) -> Hold:
        """The hold (or charge) as the provider has it now."""
        ...

    def capture(self, *, reference: str, amount: Decimal, idempotency_key: str) -> None: ...

    def release(self, *, reference: str, idempotency_key: str) -> None: ...

    def charge(
        self,
        *,
        customer: str,
        card: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> str:
        """Charge off-session now; the charge's reference. Raises ``ProviderRefused``."""
        ...

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        """Give ``amount`` back from the charge ``reference`` (a hold captured or a charge).
        Raises ``ProviderRefused`` (nothing refunded) or ``ProviderUnavailable``."""
        ...

    def refunds(self, *, reference: str) -> list[ProviderRefund]:
        """The refunds made on the charge ``reference``, whoever asked for them."""
        ...

    def webhook_event(self, *, payload: bytes, headers: dict[str, str]) -> WebhookEvent:
        """The event a webhook carries, its signature verified; raises ``InvalidEvent``."""
        ...


@cache
def _provider(path: str) -> PaymentProvider:
    provider_class: type[PaymentProvider] = import_string(path)
    return provider_class()


def provider() -> PaymentProvider:
    return _provider(settings.PAYMENT_PROVIDER)
