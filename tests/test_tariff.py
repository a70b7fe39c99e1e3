"""Money: the tariff's boundaries, in Decimal, rounded half-up to the cent."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import ParkingSession, SecuredParking, State, Tariff
from parking.services.sessions import request_exit
from tests.factories import ParkingSessionFactory


def tariff(**overrides) -> Tariff:
    fields = {
        "free_minutes": 15,
        "period_minutes": 60,
        "price_per_period": Decimal("5.00"),
        "daily_cap": Decimal("40.00"),
    }
    fields.update(overrides)
    return Tariff(secured_parking=SecuredParking(name="P", currency="RON"), **fields)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(0), "0.00"),
        (timedelta(minutes=15), "0.00"),  # exactly at the end of the grace period
        (timedelta(minutes=15, seconds=1), "5.00"),  # one second after: the first hour
        (timedelta(hours=1), "5.00"),  # exactly one period
        (timedelta(hours=1, seconds=1), "10.00"),  # a second into the next period
        (timedelta(hours=7, minutes=59), "40.00"),  # 8 started hours = the cap
        (timedelta(hours=8, seconds=1), "40.00"),  # 9 started hours, capped
        (timedelta(hours=24), "40.00"),
        (timedelta(hours=24, seconds=1), "45.00"),  # a new day starts a new hour
        (timedelta(days=3), "120.00"),
        (timedelta(days=3, minutes=1), "125.00"),  # 3 days and a minute
        (timedelta(days=3, hours=23), "160.00"),
    ],
)
def test_amount_for_the_boundaries(duration, expected):
    assert tariff().amount_for(duration) == Decimal(expected)


def test_the_amount_has_two_decimals():
    amount = tariff().amount_for(timedelta(hours=1))
    assert amount.as_tuple().exponent == -2


def test_no_cap_keeps_counting_periods():
    assert tariff(daily_cap=None).amount_for(timedelta(hours=30)) == Decimal("150.00")


def test_no_grace_period_charges_from_the_first_second():
    assert tariff(free_minutes=0).amount_for(timedelta(seconds=1)) == Decimal("5.00")


def test_rounds_half_up_to_the_cent():
    # 0.005 and 0.025 are where half-up and banker's rounding (half-even) part ways.
    ten_minutes = tariff(free_minutes=0, period_minutes=10, daily_cap=None)
    ten_minutes.price_per_period = Decimal("0.125")
    assert ten_minutes.amount_for(timedelta(minutes=30)) == Decimal("0.38")
    ten_minutes.price_per_period = Decimal("0.0050")
    assert ten_minutes.amount_for(timedelta(minutes=10)) == Decimal("0.01")
    ten_minutes.price_per_period = Decimal("0.0250")
    assert ten_minutes.amount_for(timedelta(minutes=10)) == Decimal("0.03")


def test_never_uses_floats():
    amount = tariff(price_per_period=Decimal("0.10")).amount_for(timedelta(hours=3))
    assert isinstance(amount, Decimal)
    assert amount == Decimal("0.30")  # 0.1 * 3 in floats is 0.30000000000000004


def test_a_clock_that_went_backwards_costs_nothing():
    assert tariff(free_minutes=0).amount_for(timedelta(seconds=-5)) == Decimal("0.00")


@pytest.mark.parametrize(
    ("overrides", "summary"),
    [
        ({}, "First 15 min free, then 5.00 RON per started hour, at most 40.00 RON per day"),
        ({"free_minutes": 0, "daily_cap": None}, "5.00 RON per started hour"),
        (
            {"period_minutes": 30, "daily_cap": None},
            "First 15 min free, then 5.00 RON per started 30 min",
        ),
        (
            {"period_minutes": 1440, "free_minutes": 0, "daily_cap": None},
            "5.00 RON per started day",
        ),
    ],
)
def test_readable_summary(overrides, summary):
    assert tariff(**overrides).summary == summary


@pytest.mark.django_db
def test_exit_charges_the_stay_even_from_a_stale_copy_of_the_session():
    now = timezone.now()
    session = ParkingSessionFactory(state=State.ACTIVE, start_time=now - timedelta(hours=2))
    copy = ParkingSession.objects.get(pk=session.pk)
    copy.state = State.ENTERING  # read before a parallel "enter" made it active

    exiting = request_exit(session=copy, now=now)

    assert exiting.state == State.EXITING
    assert exiting.amount == session.secured_parking.tariff.amount_for(timedelta(hours=2))
    assert exiting.amount > 0
