"""The Stripe adapter's reading of the SDK's objects, on objects the SDK itself builds from
Stripe's JSON (the paths localstripe does not take)."""

import stripe

from payments.providers import HoldStatus
from payments.providers.stripe import _hold_from


def intent(**fields) -> stripe.PaymentIntent:
    return stripe.PaymentIntent.construct_from({"id": "pi_1", **fields}, "sk_test_x")


def test_a_hold_stripe_answers_as_declined_keeps_the_card_error():
    declined = intent(
        status="requires_payment_method",
        last_payment_error={
            "code": "card_declined",
            "message": "Your card has insufficient funds.",
        },
    )

    hold = _hold_from(declined)

    assert hold.status == HoldStatus.DECLINED
    assert (hold.failure_code, hold.failure_message) == (
        "card_declined",
        "Your card has insufficient funds.",
    )


def test_a_declined_hold_without_an_error_says_declined():
    hold = _hold_from(intent(status="requires_payment_method", last_payment_error=None))

    assert (hold.status, hold.failure_code) == (HoldStatus.DECLINED, "card_declined")
