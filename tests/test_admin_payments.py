"""The back office shows how each session is paid: a payment column and filter on the
session list, the payment's figures (and a dispute) on the session's page."""

from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import State
from payments.models import Payment, PaymentState
from tests.factories import ParkingSessionFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/parking/parkingsession/"


def paid_session(state: PaymentState, **payment_fields):
    session = ParkingSessionFactory(state=State.FINISHED, amount=Decimal("10.00"))
    now = timezone.now()
    session.payment = Payment.objects.create(
        driver=session.driver,
        provider="stripe",
        idempotency_key=f"k{session.pk}",
        state=state,
        currency="RON",
        hold_amount=Decimal("40.00"),
        hold_reference=f"pi_{session.pk}",
        amount=Decimal("10.00"),
        created_at=now,
        updated_at=now,
        **payment_fields,
    )
    session.save(update_fields=["payment"])
    return session


def test_the_session_list_filters_by_payment_state(superuser_client):
    owing = paid_session(
        PaymentState.OUTSTANDING, captured_amount=Decimal("4.00"), outstanding_since=timezone.now()
    )
    paid = paid_session(PaymentState.CAPTURED, captured_amount=Decimal("10.00"))

    response = superuser_client.get(LIST_URL, {"payment__state": "outstanding"})

    assert response.status_code == 200
    shown = [session.pk for session in response.context["cl"].result_list]
    assert shown == [owing.pk]
    assert paid.pk not in shown
    assert "Outstanding balance" in response.content.decode()


def test_a_disputed_payment_is_flagged_on_the_session_page(superuser_client):
    session = paid_session(
        PaymentState.CAPTURED,
        captured_amount=Decimal("10.00"),
        disputed_at=timezone.now(),
        dispute_status="needs_response",
    )

    page = superuser_client.get(f"{LIST_URL}{session.pk}/change/").content.decode()

    assert "disputed (needs_response)" in page
    assert f"pi_{session.pk}" in page
    assert "disputed" in superuser_client.get(LIST_URL).content.decode()
