"""Receipts of finished sessions: the operator's legal name and tax id, the parking, the
times, the tariff agreed at entry, the amount with its VAT, and the payment."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import ParkingSession
from tests.api import act, error_code, json_body, new_session, session_url
from tests.factories import OperatorFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(driver_client):
    operator = OperatorFactory(legal_name="Demo Parking SRL", tax_id="RO12345678")
    parking = SecuredParkingFactory(operator=operator, address="Strada Exemplu 1")
    session_id = new_session(driver_client, parking)["parking_session"]["id"]
    act(driver_client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(
        start_time=timezone.now() - timedelta(minutes=70)
    )
    act(driver_client, session_id, "exit")
    act(driver_client, session_id, "finalize")
    return ParkingSession.objects.get(pk=session_id)


def test_the_receipt_names_the_seller_the_stay_the_tariff_and_the_vat(driver_client, finished):
    body = json_body(driver_client.get(session_url(finished.pk, "receipt")), 200)

    assert body["operator"] == {
        "name": finished.secured_parking.operator.name,
        "legal_name": "Demo Parking SRL",
        "tax_id": "RO12345678",
    }
    assert body["secured_parking"]["address"] == "Strada Exemplu 1"
    assert (body["amount"], body["vat_rate"], body["vat_amount"], body["amount_without_vat"]) == (
        "10.00",
        "0.2100",
        "1.74",
        "8.26",
    )
    assert body["tariff"]["price_per_period"] == "5.0000"
    assert body["tariff_summary"].startswith("First 15 min free")
    assert body["payment"] is None
    assert Decimal(body["amount_without_vat"]) + Decimal(body["vat_amount"]) == Decimal("10.00")


def test_an_open_session_has_no_receipt_yet(driver_client):
    session_id = new_session(driver_client, SecuredParkingFactory())["parking_session"]["id"]

    response = driver_client.get(session_url(session_id, "receipt"))

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert "finished" in response.json()["errors"][0]["detail"]


def test_another_drivers_receipt_is_not_found(make_driver_client, finished):
    other = make_driver_client()

    assert other.get(session_url(finished.pk, "receipt")).status_code == 404
