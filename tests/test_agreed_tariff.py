"""A session pays the tariff in force when it started: editing the tariff changes only the
sessions that start afterwards. Prices include VAT at PARKING_VAT_RATE, fixed at exit."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import ParkingSession, Tariff
from tests.api import CURRENT_URL, act, json_body, new_session
from tests.factories import SecuredParkingFactory

pytestmark = pytest.mark.django_db


def parked_since(client, parking, minutes: int) -> int:
    session_id = new_session(client, parking)["parking_session"]["id"]
    act(client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(
        start_time=timezone.now() - timedelta(minutes=minutes)
    )
    return session_id


def test_a_tariff_edited_during_a_stay_does_not_reprice_it(driver_client):
    parking = SecuredParkingFactory()
    session_id = parked_since(driver_client, parking, 70)

    Tariff.objects.filter(secured_parking=parking).update(price_per_period=Decimal("6.00"))

    assert json_body(driver_client.get(CURRENT_URL), 200)["amount"] == "10.00"
    assert act(driver_client, session_id, "exit")["amount"] == "10.00"


def test_a_session_started_after_the_edit_pays_the_new_price(driver_client):
    parking = SecuredParkingFactory()
    Tariff.objects.filter(secured_parking=parking).update(price_per_period=Decimal("6.00"))
    session_id = parked_since(driver_client, parking, 70)

    assert act(driver_client, session_id, "exit")["amount"] == "12.00"


def test_the_session_keeps_the_terms_it_agreed_to(driver_client):
    parking = SecuredParkingFactory()
    session_id = new_session(driver_client, parking)["parking_session"]["id"]

    assert ParkingSession.objects.get(pk=session_id).tariff_terms == {
        "free_minutes": 15,
        "period_minutes": 60,
        "price_per_period": "5.0000",
        "daily_cap": "40.00",
    }


def test_exit_fixes_the_vat_rate_in_force(driver_client, settings):
    settings.PARKING_VAT_RATE = Decimal("0.21")
    session_id = parked_since(driver_client, SecuredParkingFactory(), 70)

    act(driver_client, session_id, "exit")

    assert ParkingSession.objects.get(pk=session_id).vat_rate == Decimal("0.2100")
