"""Every endpoint that answers with a parking session answers the seed's document
(current-parking-session-v1), in every state, and all of them the same document."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from parking.models import State
from tests.api import API, CURRENT_URL, session_url
from tests.factories import ParkingSessionFactory, SecuredParkingFactory

SEED_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
AMOUNT = re.compile(r"^\d+\.\d{2}$")
MAC_ADDRESS = re.compile(r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$")
OPEN = [State.ENTERING, State.ACTIVE, State.EXITING]
CLOSED = [State.FINISHED, State.CANCELLED]

pytestmark = pytest.mark.django_db


def assert_seed_shape(body: dict) -> None:
    """The seed's parameter table, name by name and type by type, and nothing more."""
    assert set(body) == {"amount", "currency", "parking_session", "smart_key"}
    assert AMOUNT.match(body["amount"]), body["amount"]
    assert body["currency"] == "RON"

    session = body["parking_session"]
    assert set(session) == {
        "id",
        "type",
        "state",
        "start_time",
        "end_time",
        "entrance_remaining_tries",
        "exit_remaining_tries",
    }
    assert type(session["id"]) is int
    assert session["type"] == "pay_per_use"
    assert session["state"] in State.values
    assert SEED_DATETIME.match(session["start_time"])
    assert session["end_time"] is None or SEED_DATETIME.match(session["end_time"])
    assert type(session["entrance_remaining_tries"]) is int
    assert type(session["exit_remaining_tries"]) is int

    assert_smart_key_shape(body["smart_key"])


def assert_smart_key_shape(key: dict) -> None:
    assert set(key) == {
        "id",
        "secured_parking_id",
        "name",
        "description",
        "is_active",
        "type",
        "access_command",
        "is_online",
        "start_time",
        "end_time",
        "access_points",
    }
    for name in ("id", "secured_parking_id"):
        assert type(key[name]) is int
    for name in ("name", "description", "access_command"):
        assert type(key[name]) is str
    for name in ("is_active", "is_online"):
        assert type(key[name]) is bool
    assert key["type"] == "session_access"
    assert SEED_DATETIME.match(key["start_time"]) and SEED_DATETIME.match(key["end_time"])
    assert type(key["access_points"]) is list
    for item in key["access_points"]:
        assert set(item) == {"access_point"}
        assert set(item["access_point"]) == {"id", "mac_address", "direction"}
        assert type(item["access_point"]["id"]) is int
        assert MAC_ADDRESS.match(item["access_point"]["mac_address"])
        assert item["access_point"]["direction"] in ("entrance", "exit")


def session_in(state: State, driver) -> object:
    start = timezone.now() - timedelta(hours=2)
    closed = state in CLOSED
    if state == State.ENTERING:
        start = timezone.now() - timedelta(minutes=1)
    return ParkingSessionFactory(
        driver=driver,
        state=state,
        start_time=start,
        end_time=start + timedelta(hours=1) if closed else None,
        amount=Decimal("7.50") if state in (State.EXITING, State.FINISHED) else Decimal("0.00"),
        secured_parking__access_points=2,
    )


@pytest.mark.parametrize("state", OPEN + CLOSED)
def test_detail_and_history_answer_the_same_seed_document(driver_client, state):
    session = session_in(state, driver_client.driver)

    detail = driver_client.get(session_url(session.pk)).json()
    (listed,) = driver_client.get(f"{API}/parking_sessions").json()["results"]

    assert_seed_shape(detail)
    assert detail["parking_session"]["state"] == state
    assert listed == detail


@pytest.mark.parametrize("state", OPEN)
def test_current_answers_the_same_document_as_detail(driver_client, state):
    session = session_in(state, driver_client.driver)

    current = driver_client.get(CURRENT_URL).json()

    assert_seed_shape(current)
    assert current == driver_client.get(session_url(session.pk)).json()


def test_the_keys_list_answers_the_smart_key_of_the_current_document(driver_client):
    session = session_in(State.ACTIVE, driver_client.driver)
    session.smart_key.end_time = timezone.now() + timedelta(minutes=10)
    session.smart_key.save()

    (key,) = driver_client.get(f"{API}/smart_keys").json()

    assert_smart_key_shape(key)
    assert key == driver_client.get(CURRENT_URL).json()["smart_key"]


def test_every_action_answers_the_document_a_read_then_gives(driver_client):
    parking = SecuredParkingFactory(access_points=2)
    headers = {"HTTP_IDEMPOTENCY_KEY": "journey-1"}
    start = {"secured_parking_id": parking.pk}

    started = driver_client.post(f"{API}/parking_sessions", start, format="json", **headers)
    replayed = driver_client.post(f"{API}/parking_sessions", start, format="json", **headers)
    assert started.status_code == 201 and replayed.status_code == 201
    assert replayed.json() == started.json()
    answers = [started.json()]
    session_url = f"{API}/parking_sessions/{started.json()['parking_session']['id']}"
    for action in ("entrance_try", "enter", "exit", "exit_try", "finalize"):
        response = driver_client.post(f"{session_url}/{action}")
        assert response.status_code == 200, response.json()
        answers.append(response.json())
        assert response.json() == driver_client.get(session_url).json(), action

    for body in answers:
        assert_seed_shape(body)
    states = [body["parking_session"]["state"] for body in answers]
    assert states == ["entering", "entering", "active", "exiting", "exiting", "finished"]


def test_cancelling_answers_the_document_a_read_then_gives(driver_client):
    parking = SecuredParkingFactory(access_points=1)
    started = driver_client.post(
        f"{API}/parking_sessions", {"secured_parking_id": parking.pk}, format="json"
    ).json()
    session_url = f"{API}/parking_sessions/{started['parking_session']['id']}"

    cancelled = driver_client.post(f"{session_url}/cancel")

    assert cancelled.status_code == 200
    assert_seed_shape(cancelled.json())
    assert cancelled.json() == driver_client.get(session_url).json()
    assert cancelled.json()["smart_key"]["access_command"] == ""
