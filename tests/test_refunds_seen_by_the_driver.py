"""What the driver sees of refunds: the payment (``GET …/payment``) and the receipt list
each one (amount, when, Stripe's reference), and the receipt's figures stay consistent, VAT
included in each: the amount is what was captured less the refunds, its VAT the captured
VAT less the refunds'."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.datetimes import iso_seconds
from parking.services.back_office import refund_by_operator
from payments.models import Refund
from tests.api import DriverClient, json_body, session_url
from tests.factories import OperatorFactory, OperatorStaffFactory, SecuredParkingFactory
from tests.refunds import captured_session

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def refunded(localstripe, job_worker):
    """A 10.00 session (VAT 1.74 at 21%) given back 3.33, then 1.00."""
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    operator = OperatorFactory(legal_name="Demo Parking SRL", tax_id="RO12345678")
    parking = SecuredParkingFactory(operator=operator, charges_by_card=True)
    session = captured_session(localstripe, parking, timedelta(minutes=70))
    staff = OperatorStaffFactory(operator=operator)
    for amount in ("3.33", "1.00"):
        refund_by_operator(
            session=session,
            actor=staff,
            amount=Decimal(amount),
            reason="Overcharged",
            now=timezone.now(),
        )
    return session


def test_the_receipt_lists_the_refunds_and_its_vat_adds_up(refunded):
    client = DriverClient(refunded.driver)

    body = json_body(client.get(session_url(refunded.pk, "receipt")), 200)

    first, second = Refund.objects.order_by("pk")
    assert (body["amount"], body["vat_amount"], body["amount_without_vat"]) == (
        "5.67",
        "0.98",
        "4.69",
    )
    payment = body["payment"]
    assert (payment["captured_amount"], payment["captured_vat_amount"]) == ("10.00", "1.74")
    assert payment["refunded_amount"] == "4.33"
    assert payment["refunds"] == [
        {
            "amount": "3.33",
            "vat_amount": "0.58",  # 1.74 (VAT of 10.00) - 1.16 (VAT of 6.67)
            "refunded_at": iso_seconds(first.refunded_at),
            "reference": first.provider_reference,
        },
        {
            # 1.16 - 0.98 (VAT of 5.67); on its own 1.00 would carry 0.17.
            "amount": "1.00",
            "vat_amount": "0.18",
            "refunded_at": iso_seconds(second.refunded_at),
            "reference": second.provider_reference,
        },
    ]
    refunds = [Decimal(refund["amount"]) for refund in payment["refunds"]]
    refunds_vat = [Decimal(refund["vat_amount"]) for refund in payment["refunds"]]
    assert Decimal(payment["captured_amount"]) - sum(refunds) == Decimal(body["amount"])
    assert Decimal(payment["captured_vat_amount"]) - sum(refunds_vat) == Decimal(body["vat_amount"])


def test_the_receipt_reads_its_refunds_in_one_query(refunded, django_assert_num_queries):
    client = DriverClient(refunded.driver)

    # token + user, session + parking + operator + payment, its refunds
    with django_assert_num_queries(3):
        response = client.get(session_url(refunded.pk, "receipt"))

    assert response.status_code == 200


def test_the_payment_lists_the_refunds_and_its_history_has_them(refunded):
    client = DriverClient(refunded.driver)

    body = json_body(client.get(session_url(refunded.pk, "payment")), 200)

    references = list(Refund.objects.order_by("pk").values_list("provider_reference", flat=True))
    assert [(refund["amount"], refund["reference"]) for refund in body["refunds"]] == [
        ("3.33", references[0]),
        ("1.00", references[1]),
    ]
    assert all(refund["refunded_at"] for refund in body["refunds"])
    assert (body["captured_amount"], body["refunded_amount"]) == ("10.00", "4.33")
    assert [event["kind"] for event in body["history"]][-2:] == ["refunded", "refunded"]
