"""The driver's journey through the API: find a parking, get in, get out, pay."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import ParkingSession, State
from smart_keys.models import Direction, SmartKey
from tests.api import (
    CURRENT_URL,
    SECURED_PARKINGS_URL,
    SESSIONS_URL,
    SMART_KEYS_URL,
    error_codes,
    error_detail,
    json_body,
    session_action,
    session_url,
    start_session,
)
from tests.factories import ParkingSessionFactory, SecuredParkingFactory, TariffFactory

pytestmark = pytest.mark.django_db


def macs(body: dict) -> set[str]:
    return {item["access_point"]["mac_address"] for item in body["smart_key"]["access_points"]}


def test_a_driver_parks_and_pays_from_start_to_finish(driver_client):
    parking = SecuredParkingFactory(access_points=2, entrance_tries=3, exit_tries=2)
    entrance_macs = set(
        parking.access_points.filter(direction=Direction.ENTRANCE).values_list(
            "mac_address", flat=True
        )
    )
    exit_macs = set(
        parking.access_points.filter(direction=Direction.EXIT).values_list("mac_address", flat=True)
    )

    started = start_session(driver_client, parking)
    assert started.status_code == 201, started.json()
    body = started.json()
    session_id = body["parking_session"]["id"]
    assert body["parking_session"]["state"] == "entering"
    assert body["parking_session"]["entrance_remaining_tries"] == 3
    assert body["parking_session"]["exit_remaining_tries"] == 2
    assert body["smart_key"]["type"] == "session_access"
    assert body["smart_key"]["secured_parking_id"] == parking.pk
    assert body["amount"] == "0.00" and body["currency"] == "RON"
    assert macs(body) == entrance_macs

    tried = session_action(driver_client, session_id, "entrance_try")
    assert tried.status_code == 200, tried.json()
    assert tried.json()["parking_session"]["entrance_remaining_tries"] == 2
    assert tried.json()["smart_key"]["access_command"] != body["smart_key"]["access_command"]

    entered = session_action(driver_client, session_id, "enter")
    assert entered.status_code == 200
    assert entered.json()["parking_session"]["state"] == "active"
    assert driver_client.get(CURRENT_URL).json()["parking_session"]["id"] == session_id

    # Two hours and a bit later: 3 started hours at 5.00 RON.
    ParkingSession.objects.filter(pk=session_id).update(
        start_time=timezone.now() - timedelta(hours=2, minutes=5)
    )
    assert driver_client.get(CURRENT_URL).json()["amount"] == "15.00"

    exited = session_action(driver_client, session_id, "exit")
    assert exited.status_code == 200
    assert exited.json()["parking_session"]["state"] == "exiting"
    assert exited.json()["amount"] == "15.00"
    assert macs(exited.json()) == exit_macs

    exit_try = session_action(driver_client, session_id, "exit_try")
    assert exit_try.status_code == 200
    assert exit_try.json()["parking_session"]["exit_remaining_tries"] == 1

    finished = session_action(driver_client, session_id, "finalize")
    assert finished.status_code == 200
    final = finished.json()
    assert final["parking_session"]["state"] == "finished"
    assert final["parking_session"]["end_time"] is not None
    assert final["amount"] == "15.00"
    assert ParkingSession.objects.get(pk=session_id).amount == Decimal("15.00")
    assert driver_client.get(CURRENT_URL).status_code == 404
    assert driver_client.get(SMART_KEYS_URL).json() == []


def test_the_amount_is_fixed_at_exit(driver_client):
    session = ParkingSessionFactory(
        driver=driver_client.driver, start_time=timezone.now() - timedelta(minutes=50)
    )
    exited = session_action(driver_client, session.pk, "exit").json()
    ParkingSession.objects.filter(pk=session.pk).update(
        start_time=timezone.now() - timedelta(hours=5)
    )

    assert exited["amount"] == "5.00"
    assert session_action(driver_client, session.pk, "finalize").json()["amount"] == "5.00"


def test_cancelling_before_getting_in_costs_nothing(driver_client):
    parking = SecuredParkingFactory(access_points=1)
    session_id = start_session(driver_client, parking).json()["parking_session"]["id"]

    cancelled = session_action(driver_client, session_id, "cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["parking_session"]["state"] == "cancelled"
    assert cancelled.json()["amount"] == "0.00"
    assert driver_client.get(SMART_KEYS_URL).json() == []
    assert start_session(driver_client, parking).status_code == 201


def test_second_start_while_one_is_open_is_409_naming_the_open_session(driver_client):
    parking = SecuredParkingFactory()
    first = start_session(driver_client, parking).json()["parking_session"]["id"]

    second = start_session(driver_client, SecuredParkingFactory())

    assert second.status_code == 409
    assert second.json()["parking_session_id"] == first
    assert error_codes(second) == ["open_session_exists"]
    assert ParkingSession.objects.filter(driver=driver_client.driver).count() == 1


def test_entrance_tries_run_out(driver_client):
    parking = SecuredParkingFactory(entrance_tries=1)
    session_id = start_session(driver_client, parking).json()["parking_session"]["id"]

    assert session_action(driver_client, session_id, "entrance_try").status_code == 200
    refused = session_action(driver_client, session_id, "entrance_try")

    assert refused.status_code == 409
    assert error_codes(refused) == ["no_tries_left"]
    assert ParkingSession.objects.get(pk=session_id).entrance_remaining_tries == 0


ILLEGAL_ACTIONS = {
    State.ENTERING: ["exit", "exit_try", "finalize"],
    State.ACTIVE: ["entrance_try", "enter", "exit_try", "finalize", "cancel"],
    State.EXITING: ["entrance_try", "enter", "exit", "cancel"],
    State.FINISHED: ["entrance_try", "enter", "exit", "exit_try", "finalize", "cancel"],
    State.CANCELLED: ["entrance_try", "enter", "exit", "exit_try", "finalize", "cancel"],
}


@pytest.mark.parametrize(
    ("state", "action"),
    [(state, action) for state, actions in ILLEGAL_ACTIONS.items() for action in actions],
)
def test_every_illegal_transition_is_409_and_changes_nothing(driver_client, state, action):
    start_time = timezone.now() - timedelta(minutes=5)
    closed = state in (State.FINISHED, State.CANCELLED)
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        state=state,
        start_time=start_time,
        end_time=timezone.now() if closed else None,
    )
    before = ParkingSession.objects.values().get(pk=session.pk)
    key_before = SmartKey.objects.values().get(pk=session.smart_key_id)

    response = session_action(driver_client, session.pk, action)

    assert response.status_code == 409, response.json()
    assert error_codes(response) == ["invalid_session_state"]
    assert state in error_detail(response)
    assert ParkingSession.objects.values().get(pk=session.pk) == before
    assert SmartKey.objects.values().get(pk=session.smart_key_id) == key_before


@pytest.mark.parametrize(
    "action", ["entrance_try", "enter", "exit", "exit_try", "finalize", "cancel", ""]
)
def test_another_drivers_session_is_404_for_every_action(driver_client, action):
    state = State.EXITING if action in ("exit_try", "finalize") else State.ENTERING
    state = State.ACTIVE if action == "exit" else state
    session = ParkingSessionFactory(state=state)
    before = ParkingSession.objects.values().get(pk=session.pk)

    if action:
        response = session_action(driver_client, session.pk, action)
    else:
        response = driver_client.get(session_url(session.pk))

    assert response.status_code == 404
    assert ParkingSession.objects.values().get(pk=session.pk) == before


def test_history_is_newest_first_and_paginated(driver_client):
    now = timezone.now()
    # Made in an order that is neither newest nor oldest first, so only the sort can explain
    # the order of the page.
    for days_ago in sorted(range(25), key=lambda days: (days % 7, days)):
        ParkingSessionFactory(
            driver=driver_client.driver,
            state=State.FINISHED,
            start_time=now - timedelta(days=days_ago, hours=1),
            end_time=now - timedelta(days=days_ago),
        )
    ParkingSessionFactory(state=State.FINISHED, end_time=now + timedelta(hours=1))  # another driver

    first_page = driver_client.get(SESSIONS_URL).json()
    second_page = driver_client.get(SESSIONS_URL, {"page": 2}).json()

    assert first_page["count"] == 25
    assert len(first_page["results"]) == 20 and len(second_page["results"]) == 5
    starts = [item["parking_session"]["start_time"] for item in first_page["results"]]
    later_starts = [item["parking_session"]["start_time"] for item in second_page["results"]]
    assert starts == sorted(starts, reverse=True)
    assert later_starts == sorted(later_starts, reverse=True)
    assert min(starts) > max(later_starts)
    assert set(first_page["results"][0]) == {"amount", "currency", "parking_session", "smart_key"}


def test_history_costs_a_constant_number_of_queries(driver_client, django_assert_num_queries):
    def add_finished_sessions(count: int) -> None:
        for _ in range(count):
            ParkingSessionFactory(
                driver=driver_client.driver,
                state=State.FINISHED,
                end_time=timezone.now() + timedelta(hours=1),
                secured_parking__access_points=3,
            )

    # token, then the page (sessions with parking, tariff, key and access points) and count
    add_finished_sessions(1)
    with django_assert_num_queries(2):
        one = driver_client.get(SESSIONS_URL)
    add_finished_sessions(29)
    with django_assert_num_queries(2):
        thirty = driver_client.get(SESSIONS_URL)

    assert one.status_code == thirty.status_code == 200
    assert (one.json()["count"], len(one.json()["results"])) == (1, 1)
    assert (thirty.json()["count"], len(thirty.json()["results"])) == (30, 20)
    access_points = [item["smart_key"]["access_points"] for item in thirty.json()["results"]]
    assert [len(points) for points in access_points] == [3] * 20


def test_one_session_by_id(driver_client):
    session = ParkingSessionFactory(driver=driver_client.driver)

    response = driver_client.get(session_url(session.pk))

    assert response.status_code == 200
    assert response.json()["parking_session"]["id"] == session.pk


@pytest.mark.parametrize("state", [State.ACTIVE, State.EXITING, State.FINISHED])
def test_one_session_costs_two_queries_and_reads_as_in_the_history(
    driver_client, django_assert_num_queries, state
):
    now = timezone.now()
    session = ParkingSessionFactory(
        driver=driver_client.driver, state=state, secured_parking__access_points=3,
        start_time=now - timedelta(hours=5), amount=Decimal("12.50"),
        end_time=now if state == State.FINISHED else None,
    )  # fmt: skip
    ParkingSessionFactory(state=State.ACTIVE)  # another driver's

    # token, then the session with its parking, tariff, key and the key's access points
    with django_assert_num_queries(2):
        one = json_body(driver_client.get(session_url(session.pk)), 200)
    listed = json_body(driver_client.get(SESSIONS_URL), 200)["results"]

    assert listed == [one]
    assert len(one["smart_key"]["access_points"]) == 3


def test_unknown_session_id_is_404(driver_client):
    assert driver_client.get(session_url(999999)).status_code == 404
    assert session_action(driver_client, 2**70, "enter").status_code == 404


class TestParkingAvailability:
    def test_inactive_parking_refuses_new_sessions(self, driver_client):
        parking = SecuredParkingFactory(is_active=False)

        response = start_session(driver_client, parking)

        assert response.status_code == 409
        assert error_codes(response) == ["parking_unavailable"]
        assert not ParkingSession.objects.exists()

    def test_full_parking_refuses_new_sessions(self, driver_client):
        parking = SecuredParkingFactory(capacity=1)
        ParkingSessionFactory(secured_parking=parking, state=State.ACTIVE)

        response = start_session(driver_client, parking)

        assert response.status_code == 409
        assert "full" in error_detail(response)
        assert not ParkingSession.objects.filter(driver=driver_client.driver).exists()

    def test_a_parking_without_tariff_refuses_new_sessions(self, driver_client):
        parking = SecuredParkingFactory(tariff=None)

        assert start_session(driver_client, parking).status_code == 409

    def test_stale_entering_sessions_do_not_take_a_place(self, driver_client, settings):
        parking = SecuredParkingFactory(capacity=1)
        ParkingSessionFactory(
            secured_parking=parking,
            state=State.ENTERING,
            start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1),
        )

        assert start_session(driver_client, parking).status_code == 201


class TestEnteringTimeout:
    def _stale_session(self, driver, settings):
        return ParkingSessionFactory(
            driver=driver,
            state=State.ENTERING,
            start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1),
        )

    def test_a_session_left_entering_too_long_counts_as_cancelled(self, driver_client, settings):
        session = self._stale_session(driver_client.driver, settings)

        assert driver_client.get(CURRENT_URL).status_code == 404
        body = driver_client.get(session_url(session.pk)).json()
        assert body["parking_session"]["state"] == "cancelled"
        assert body["amount"] == "0.00"
        assert driver_client.get(SMART_KEYS_URL).json() == []

    def test_it_can_no_longer_be_used(self, driver_client, settings):
        session = self._stale_session(driver_client.driver, settings)

        response = session_action(driver_client, session.pk, "entrance_try")

        assert response.status_code == 409
        assert "expired" in error_detail(response)

    def test_the_driver_can_start_again_without_any_cleanup_having_run(
        self, driver_client, settings
    ):
        stale = self._stale_session(driver_client.driver, settings)

        response = start_session(driver_client, SecuredParkingFactory())

        assert response.status_code == 201
        stale.refresh_from_db()
        assert stale.state == State.CANCELLED

    def test_a_fresh_entering_session_is_still_current(self, driver_client, settings):
        ParkingSessionFactory(
            driver=driver_client.driver,
            state=State.ENTERING,
            start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT + timedelta(minutes=1),
        )

        assert driver_client.get(CURRENT_URL).status_code == 200


class TestSmartKeys:
    def test_the_driver_gets_the_key_of_their_open_session(self, driver_client):
        parking = SecuredParkingFactory(access_points=2, name="Secured P 1")
        body = start_session(driver_client, parking).json()

        keys = driver_client.get(SMART_KEYS_URL).json()

        assert keys == [body["smart_key"]]

    def test_an_expired_key_is_not_offered(self, driver_client):
        session = ParkingSessionFactory(driver=driver_client.driver)
        SmartKey.objects.filter(pk=session.smart_key_id).update(
            start_time=timezone.now() - timedelta(hours=2),
            end_time=timezone.now() - timedelta(seconds=1),
        )

        assert driver_client.get(SMART_KEYS_URL).json() == []

    def test_other_drivers_keys_are_not_offered(self, driver_client):
        ParkingSessionFactory()

        assert driver_client.get(SMART_KEYS_URL).json() == []

    def test_costs_two_queries_with_a_key_or_without(
        self, driver_client, django_assert_num_queries
    ):
        parking = SecuredParkingFactory(access_points=3)
        ParkingSessionFactory(
            driver=driver_client.driver, state=State.FINISHED,
            start_time=timezone.now() - timedelta(hours=2), end_time=timezone.now(),
        )  # fmt: skip
        # token, then the open session with its key, parking and access points
        with django_assert_num_queries(2):
            none = driver_client.get(SMART_KEYS_URL)
        start_session(driver_client, parking)
        with django_assert_num_queries(2):
            one = driver_client.get(SMART_KEYS_URL)

        assert none.json() == []
        assert [len(key["access_points"]) for key in one.json()] == [3]


class TestSecuredParkings:
    def test_lists_what_the_app_needs_to_choose(self, driver_client):
        parking = SecuredParkingFactory(
            name="Secured P 1",
            capacity=10,
            latitude=Decimal("46.770439"),
            longitude=Decimal("23.591423"),
        )
        ParkingSessionFactory(secured_parking=parking, state=State.ACTIVE)
        ParkingSessionFactory(
            secured_parking=parking, state=State.FINISHED, end_time=timezone.now() + timedelta(1)
        )

        results = driver_client.get(SECURED_PARKINGS_URL).json()["results"]

        assert results == [
            {
                "id": parking.pk,
                "name": "Secured P 1",
                "description": parking.description,
                "address": parking.address,
                "latitude": 46.770439,
                "longitude": 23.591423,
                "is_active": True,
                "is_online": False,
                "currency": "RON",
                "tariff": {
                    "summary": "First 15 min free, then 5.00 RON per started hour, "
                    "at most 40.00 RON per day",
                    "free_minutes": 15,
                    "period_minutes": 60,
                    "price_per_period": "5.00",
                    "daily_cap": "40.00",
                },
                "capacity": 10,
                "free_places": 9,
            }
        ]

    def test_a_parking_without_tariff_coordinates_or_cap_lists_them_as_null(self, driver_client):
        SecuredParkingFactory(name="No tariff", tariff=None, latitude=None, longitude=None)
        TariffFactory(
            secured_parking__name="Uncapped", free_minutes=0, period_minutes=30,
            price_per_period=Decimal("0.3333"), daily_cap=None,
        )  # fmt: skip

        listed = json_body(driver_client.get(SECURED_PARKINGS_URL), 200)["results"]

        by_name = {item["name"]: item for item in listed}
        assert (by_name["No tariff"]["tariff"], by_name["No tariff"]["latitude"]) == (None, None)
        assert by_name["No tariff"]["longitude"] is None
        assert by_name["Uncapped"]["tariff"] == {
            "summary": "0.33 RON per started 30 min",
            "free_minutes": 0,
            "period_minutes": 30,
            "price_per_period": "0.3333",
            "daily_cap": None,
        }

    def test_constant_number_of_queries(self, driver_client, django_assert_num_queries):
        # token, page with its count, tariffs and occupancy
        ParkingSessionFactory()
        with django_assert_num_queries(2):
            one = driver_client.get(SECURED_PARKINGS_URL)
        for _ in range(7):
            ParkingSessionFactory()
        with django_assert_num_queries(2):
            eight = driver_client.get(SECURED_PARKINGS_URL)

        assert one.status_code == eight.status_code == 200
        assert len(one.json()["results"]) == 1
        assert len(eight.json()["results"]) == 8

    def test_needs_a_token(self, api_client):
        assert api_client.get(SECURED_PARKINGS_URL).status_code == 401
