"""Invariants the database itself enforces, whatever the Python code above it does."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection
from django.utils import timezone

from parking.models import ParkingSession, State
from smart_keys.mac_addresses import normalize_mac_address
from smart_keys.models import AccessPoint
from tests.database import refused_by_the_database
from tests.factories import AccessPointFactory, ParkingSessionFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("second_state", [State.ENTERING, State.ACTIVE, State.EXITING])
def test_a_second_open_session_for_one_driver_is_refused(second_state):
    first = ParkingSessionFactory(state=State.ACTIVE)

    assert refused_by_the_database(
        lambda: ParkingSessionFactory(driver=first.driver, state=second_state)
    )


def test_closed_sessions_do_not_count_against_the_open_one():
    first = ParkingSessionFactory(state=State.ACTIVE)
    start = timezone.now() - timedelta(days=1)
    for state in (State.FINISHED, State.CANCELLED):
        ParkingSessionFactory(
            driver=first.driver, state=state, start_time=start, end_time=start + timedelta(hours=1)
        )
    assert ParkingSession.objects.filter(driver=first.driver).count() == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"entrance_remaining_tries": -1},
        {"exit_remaining_tries": -1},
        {"amount": Decimal("-0.01")},
        {"state": "parked"},
        {"end_time": timezone.now() - timedelta(days=365)},
    ],
    ids=["entrance-tries", "exit-tries", "amount", "state", "end-before-start"],
)
def test_session_rows_that_break_an_invariant_are_refused(changes):
    session = ParkingSessionFactory()

    assert refused_by_the_database(
        lambda: ParkingSession.objects.filter(pk=session.pk).update(**changes)
    )


def test_mac_addresses_are_unique_whatever_the_spelling():
    AccessPointFactory(mac_address="76:86:BB:DE:63:AD")

    assert refused_by_the_database(lambda: AccessPointFactory(mac_address="76-86-bb-de-63-ad"))


def test_a_non_canonical_mac_cannot_reach_the_table():
    access_point = AccessPointFactory()

    def write_around_the_orm():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {AccessPoint._meta.db_table} SET mac_address = %s WHERE id = %s",
                ["76-86-bb-de-63-ad", access_point.pk],
            )

    assert refused_by_the_database(write_around_the_orm)


@pytest.mark.parametrize(
    "spelling",
    [
        "76:86:BB:DE:63:AD",
        "76:86:bb:de:63:ad",
        "76-86-BB-DE-63-AD",
        "7686.bbde.63ad",
        "7686BBDE63AD",
        " 76:86:bb:de:63:ad ",
    ],
)
def test_mac_addresses_are_stored_canonical(spelling):
    access_point = AccessPointFactory(mac_address=spelling)

    access_point.refresh_from_db()
    assert access_point.mac_address == "76:86:BB:DE:63:AD"
    assert AccessPoint.objects.get(mac_address=spelling.lower()) == access_point


@pytest.mark.parametrize(
    "bad", ["", "76:86:BB:DE:63", "76:86:BB:DE:63:AD:00", "76:86-BB:DE:63:AD", "GG:86:BB:DE:63:AD"]
)
def test_malformed_mac_addresses_are_rejected(bad):
    with pytest.raises(ValidationError):
        normalize_mac_address(bad)
    access_point = AccessPoint(secured_parking=SecuredParkingFactory(), direction="entrance")
    access_point.mac_address = bad
    with pytest.raises(ValidationError):
        access_point.full_clean()


def test_production_settings_need_a_secret_key(monkeypatch):
    import importlib

    import parking_api.settings as settings_module

    monkeypatch.setenv("DJANGO_DEBUG", "0")
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        importlib.reload(settings_module)
    monkeypatch.undo()
    importlib.reload(settings_module)


@pytest.mark.postgres
def test_a_session_cannot_hold_a_key_of_another_parking():
    session = ParkingSessionFactory(state=State.ACTIVE)
    elsewhere = SecuredParkingFactory()

    def move_the_key() -> None:
        type(session.smart_key).objects.filter(pk=session.smart_key_id).update(
            secured_parking=elsewhere
        )
        connection.check_constraints()  # the constraint is deferred to the commit

    def move_the_session() -> None:
        ParkingSession.objects.filter(pk=session.pk).update(secured_parking=elsewhere)
        connection.check_constraints()

    assert refused_by_the_database(move_the_key)
    assert refused_by_the_database(move_the_session)
