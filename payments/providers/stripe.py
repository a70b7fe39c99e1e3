"""Stripe through its official SDK, server side only: PaymentIntents with manual capture for
holds, SetupIntents for saving cards (the app confirms them with Stripe's mobile SDK).

Timeouts are short and the SDK does not retry on its own: a start waits seconds, not a minute,
for a Stripe that is down, and jobs do the retrying."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from payments.providers import (
    CardRefused,
    CardSetupStart,
    Hold,
    HoldStatus,
    InvalidEvent,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    SavedCard,
    WebhookEvent,
)

# Currencies whose minor unit is a hundredth (RON's ban, EUR's cent).
MINOR_UNITS = Decimal(100)


def to_minor_units(amount: Decimal) -> int:
    minor = amount * MINOR_UNITS
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(minor)


def _hold_from(intent: Any) -> Hold:
    status = intent.status
    if status == "requires_capture":
        return Hold(intent.id, HoldStatus.AUTHORIZED)
    if status == "requires_action":
        return Hold(intent.id, HoldStatus.REQUIRES_ACTION, client_secret=intent.client_secret)
    if status == "requires_payment_method":
        error = intent.last_payment_error
        return Hold(
            intent.id,
            HoldStatus.DECLINED,
            # A StripeObject: attributes, no dict methods.
            failure_code=getattr(error, "code", None) or "card_declined",
            failure_message=getattr(error, "message", None) or "The card was declined.",
        )
    if status == "succeeded":
        return Hold(intent.id, HoldStatus.CAPTURED, kept=_kept(intent))
    return Hold(intent.id, HoldStatus.GONE)


def _kept(intent: Any) -> Decimal:
    """Captured less refunded, from the PaymentIntent's charge. Stripe says what it captured
    (``amount_captured``); localstripe does not, and, like Stripe's older API versions,
    counts the released rest of a partial capture as refunded."""
    charge = intent.latest_charge
    if charge is None or isinstance(charge, str):
        return Decimal(intent.amount_received or 0) / MINOR_UNITS
    captured = _field(charge, "amount_captured", None)
    if captured is None:
        captured = charge.amount
    return Decimal(captured - charge.amount_refunded) / MINOR_UNITS


def _refund_from(refund: Any) -> ProviderRefund:
    return ProviderRefund(
        reference=str(refund.id),
        amount=Decimal(refund.amount) / MINOR_UNITS,
        created_at=datetime.fromtimestamp(int(refund.created), tz=UTC),
        idempotency_key=str(_field(_field(refund, "metadata", {}) or {}, "idempotency_key", "")),
    )


def _field(obj: Any, name: str, default: Any) -> Any:
    """A field Stripe may leave out (a StripeObject is no dict: it has no ``get``)."""
    return obj[name] if name in obj else default


# A refund in these states has given, or is giving, the money back.
REFUND_MADE = ("succeeded", "pending")


class StripeProvider:
    name = "stripe"

    def _client(self) -> stripe.StripeClient:
        if not settings.STRIPE_API_KEY:
            raise ProviderUnavailable("STRIPE_API_KEY is not set")
        return _client(
            settings.STRIPE_API_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise ProviderUnavailable(str(error)) from error
        except stripe.APIError as error:
            # Stripe's own 5xx: as good as unreachable for the caller.
            raise ProviderUnavailable(str(error)) from error
        except stripe.CardError as error:
            raise CardRefused(error.code or "card_declined", _message(error)) from error
        except stripe.InvalidRequestError as error:
            raise ProviderRefused(error.code or "invalid_request", _message(error)) from error

    def create_customer(self, *, email: str, idempotency_key: str) -> str:
        client = self._client()
        customer = self._call(
            client.v1.customers.create,
            {"email": email},
            {"idempotency_key": idempotency_key},
        )
        return str(customer.id)

    def start_card_setup(self, *, customer: str) -> CardSetupStart:
        client = self._client()
        intent = self._call(
            client.v1.setup_intents.create,
            {"customer": customer, "usage": "off_session", "payment_method_types": ["card"]},
        )
        return CardSetupStart(reference=intent.id, client_secret=intent.client_secret)

    def finished_card_setup(self, *, setup: str, customer: str) -> SavedCard | None:
        client = self._client()
        intent = self._call(client.v1.setup_intents.retrieve, setup)
        if intent.status != "succeeded" or not intent.payment_method:
            return None
        # Stripe attaches the card of a customer's SetupIntent itself; attaching again to
        # the same customer is harmless (and localstripe needs it).
        method = self._call(
            client.v1.payment_methods.attach, str(intent.payment_method), {"customer": customer}
        )
        card = method.card
        return SavedCard(
            reference=method.id,
            brand=card.brand or "",
            last4=card.last4 or "",
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    def remove_card(self, *, card: str) -> None:
        client = self._client()
        self._call(client.v1.payment_methods.detach, card)

    def delete_customer(self, *, customer: str) -> None:
        client = self._client()
        self._call(client.v1.customers.delete, customer)

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
        client = self._client()
        params = {
            "amount": to_minor_units(amount),
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": card,
            "capture_method": "manual",
            "confirm": True,
            "off_session": True,
            "metadata": {"purpose": description},
        }
        try:
            intent = self._call(
                client.v1.payment_intents.create, params, {"idempotency_key": idempotency_key}
            )
        except CardRefused as refusal:
            return Hold(
                "", HoldStatus.DECLINED, failure_code=refusal.code, failure_message=refusal.message
            )
        return _hold_from(intent)

    def hold(self, *, reference: str) -> Hold:
        client = self._client()
        return _hold_from(self._call(client.v1.payment_intents.retrieve, reference))

    def capture(self, *, reference: str, amount: Decimal, idempotency_key: str) -> None:
        client = self._client()
        self._call(
            client.v1.payment_intents.capture,
            reference,
            {"amount_to_capture": to_minor_units(amount)},
            {"idempotency_key": idempotency_key},
        )

    def release(self, *, reference: str, idempotency_key: str) -> None:
        client = self._client()
        intent = self._call(client.v1.payment_intents.retrieve, reference)
        if intent.status == "canceled":
            return
        self._call(
            client.v1.payment_intents.cancel, reference, {}, {"idempotency_key": idempotency_key}
        )

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
        client = self._client()
        intent = self._call(
            client.v1.payment_intents.create,
            {
                "amount": to_minor_units(amount),
                "currency": currency.lower(),
                "customer": customer,
                "payment_method": card,
                "confirm": True,
                "off_session": True,
                "metadata": {"purpose": description},
            },
            {"idempotency_key": idempotency_key},
        )
        if intent.status != "succeeded":
            raise ProviderRefused("authentication_required", "The card needs authentication.")
        return str(intent.id)

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        client = self._client()
        refund = self._call(
            client.v1.refunds.create,
            {
                "payment_intent": reference,
                "amount": to_minor_units(amount),
                # Kept on the refund, so that listing a charge's refunds tells ours apart.
                "metadata": {"idempotency_key": idempotency_key},
            },
            {"idempotency_key": idempotency_key},
        )
        if refund.status not in REFUND_MADE:
            raise ProviderRefused(
                str(_field(refund, "failure_reason", None) or refund.status),
                "Stripe did not refund.",
            )
        return _refund_from(refund)

    def refunds(self, *, reference: str) -> list[ProviderRefund]:
        client = self._client()
        listed = self._call(client.v1.refunds.list, {"payment_intent": reference, "limit": 100})
        return [
            _refund_from(refund)
            for refund in listed.data
            # localstripe lists the released rest of a partial capture as a refund of the
            # charge, without a PaymentIntent; Stripe names the PaymentIntent on every refund.
            if refund.status in REFUND_MADE and _field(refund, "payment_intent", None)
        ]

    def webhook_event(self, *, payload: bytes, headers: dict[str, str]) -> WebhookEvent:
        secret = settings.STRIPE_WEBHOOK_SECRET
        signature = headers.get("Stripe-Signature")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
            )
            body = json.loads(payload)
            obj = body["data"]["object"]
            return WebhookEvent(
                id=str(body["id"]),
                type=str(body["type"]),
                occurred_at=datetime.fromtimestamp(int(body["created"]), tz=UTC),
                payment_reference=_payment_intent_of(obj),
                dispute_status=str(obj.get("status", "")) if obj.get("object") == "dispute" else "",
                payload=body,
            )
        except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as error:
            raise InvalidEvent(str(error)) from error


def _payment_intent_of(obj: dict[str, Any]) -> str:
    if obj.get("object") == "payment_intent":
        return str(obj["id"])
    reference = obj.get("payment_intent") or ""
    return str(reference.get("id", "") if isinstance(reference, dict) else reference)


def _message(error: stripe.StripeError) -> str:
    return str(error.user_message or error._message or "The payment provider refused.")


_clients: dict[tuple[str, str, float], stripe.StripeClient] = {}


def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    key = (api_key, api_base, timeout)
    if key not in _clients:
        _clients[key] = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )
    return _clients[key]
