import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.authentication import BearerTokenAuthentication
from parking.models import ParkingSession, State
from tests.api import (
    API,
    CURRENT_URL,
    error_body,
    error_codes,
    error_detail,
    one_error,
    session_url,
)
from tests.factories import (
    AccessPointFactory,
    AccessTokenFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
)

SEED_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")

pytestmark = pytest.mark.django_db


def test_current_session_has_the_seed_shape(driver_client):
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        secured_parking__name="Secured P 1",
        secured_parking__access_points=2,
        state=State.EXITING,  # the amount is fixed once the driver heads out
        amount=Decimal("4.17"),
        start_time=datetime(2017, 9, 5, 8, 51, 56, 123456, tzinfo=UTC),
    )

    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"amount", "currency", "parking_session", "smart_key"}
    assert body["amount"] == "4.17"
    assert body["currency"] == "RON"
    assert body["parking_session"] == {
        "id": session.pk,
        "type": "pay_per_use",
        "state": "exiting",
        "start_time": "2017-09-05T08:51:56+00:00",
        "end_time": None,
        "entrance_remaining_tries": 3,
        "exit_remaining_tries": 3,
    }
    key = session.smart_key
    smart_key = body["smart_key"]
    assert set(smart_key) == {
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
    assert smart_key["id"] == key.pk
    assert smart_key["secured_parking_id"] == session.secured_parking_id
    assert smart_key["name"] == "Secured P 1"
    assert smart_key["description"] == key.description
    assert smart_key["is_active"] is True
    assert smart_key["is_online"] is False
    assert smart_key["type"] == "session_access"
    assert smart_key["access_command"] == key.access_command
    assert SEED_DATETIME.match(smart_key["start_time"])
    assert SEED_DATETIME.match(smart_key["end_time"])
    entrance_macs = sorted(ap.mac_address for ap in key.access_points.all())
    assert sorted(item["access_point"]["mac_address"] for item in smart_key["access_points"]) == (
        entrance_macs
    )
    assert len(entrance_macs) == 2
    for item in smart_key["access_points"]:
        assert set(item) == {"access_point"}
        assert re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", item["access_point"]["mac_address"])


def test_current_session_field_types(driver_client):
    ParkingSessionFactory(driver=driver_client.driver, secured_parking__access_points=1)

    body = driver_client.get(CURRENT_URL).json()

    session, key = body["parking_session"], body["smart_key"]
    assert isinstance(body["amount"], str) and re.fullmatch(r"\d+\.\d{2}", body["amount"])
    assert isinstance(body["currency"], str)
    assert isinstance(session["id"], int)
    assert isinstance(session["entrance_remaining_tries"], int)
    assert isinstance(session["exit_remaining_tries"], int)
    assert SEED_DATETIME.match(session["start_time"])
    assert isinstance(key["id"], int) and isinstance(key["secured_parking_id"], int)
    assert isinstance(key["is_active"], bool) and isinstance(key["is_online"], bool)
    assert isinstance(key["access_points"], list)


def test_whole_amounts_still_have_two_decimals(driver_client):
    ParkingSessionFactory(driver=driver_client.driver, state=State.EXITING, amount=Decimal("12"))

    assert driver_client.get(CURRENT_URL).json()["amount"] == "12.00"


def test_finished_session_end_time_uses_the_seed_format(driver_client):
    # A finished session is not current, but the body format is shared by every session endpoint.
    start = timezone.now() - timedelta(hours=2)
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        state=State.FINISHED,
        start_time=start,
        end_time=start + timedelta(hours=1, microseconds=999),
    )
    body = driver_client.get(f"/api/car_driver/parking_sessions/{session.pk}").json()
    assert SEED_DATETIME.match(body["parking_session"]["end_time"])


@pytest.mark.parametrize("state", [State.ENTERING, State.ACTIVE, State.EXITING])
def test_any_open_state_is_current(driver_client, state):
    session = ParkingSessionFactory(driver=driver_client.driver, state=state)

    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200
    assert response.json()["parking_session"]["id"] == session.pk
    assert response.json()["parking_session"]["state"] == state


@pytest.mark.parametrize("state", [State.FINISHED, State.CANCELLED])
def test_closed_sessions_are_not_current(driver_client, state):
    start = timezone.now() - timedelta(hours=1)
    ParkingSessionFactory(
        driver=driver_client.driver,
        state=state,
        start_time=start,
        end_time=start + timedelta(minutes=5),
    )

    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["not_found"]
    assert error_detail(response)


def test_no_session_at_all_is_404_json(driver_client):
    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 404
    assert error_body(response) == one_error("not_found", "You have no open parking session.")


def test_a_driver_never_sees_another_drivers_session(driver_client):
    ParkingSessionFactory()  # someone else's open session

    assert driver_client.get(CURRENT_URL).status_code == 404


def test_the_parking_flags_come_from_the_parking(driver_client):
    ParkingSessionFactory(
        driver=driver_client.driver,
        secured_parking__is_active=False,
        secured_parking__is_online=True,
    )

    key = driver_client.get(CURRENT_URL).json()["smart_key"]

    assert key["is_active"] is False
    assert key["is_online"] is True


def test_the_answer_must_not_be_cached(driver_client):
    ParkingSessionFactory(driver=driver_client.driver)

    assert driver_client.get(CURRENT_URL)["Cache-Control"] == "no-store"
    assert driver_client.get(f"{API}/nowhere")["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_not_allowed(driver_client, method):
    ParkingSessionFactory(driver=driver_client.driver)

    response = getattr(driver_client, method)(CURRENT_URL)

    assert response.status_code == 405
    assert error_codes(response) == ["method_not_allowed"]
    assert error_detail(response)


@pytest.mark.parametrize(("few", "many"), [(0, 1), (1, 8), (1, 30)])
def test_query_count_does_not_grow_with_access_points(
    driver_client, django_assert_num_queries, few, many
):
    session = ParkingSessionFactory(driver=driver_client.driver, secured_parking__access_points=few)
    # 1: the token with its user; 2: session, key, parking, tariff and the key's access points
    # (aggregated), whatever their number. SQLite, the local demo's database, loads the
    # session with the ORM's with_body(), whose access points take a third query.
    queries = 2 if connection.vendor == "postgresql" else 3

    with django_assert_num_queries(queries):
        with_few = driver_client.get(CURRENT_URL)
    session.smart_key.access_points.add(
        *AccessPointFactory.create_batch(many - few, secured_parking=session.secured_parking)
    )
    with django_assert_num_queries(queries):
        with_many = driver_client.get(CURRENT_URL)

    assert with_few.status_code == with_many.status_code == 200
    assert len(with_few.json()["smart_key"]["access_points"]) == few
    assert len(with_many.json()["smart_key"]["access_points"]) == many


class TestBearerTokens:
    def _assert_unauthorized(self, response):
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert error_codes(response) in (["not_authenticated"], ["authentication_failed"])
        assert error_detail(response)

    def test_the_request_carries_the_stored_token_and_user(self):
        token = AccessTokenFactory(user__is_staff=True)
        request = Request(
            APIRequestFactory().get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
        )

        user, loaded = BearerTokenAuthentication().authenticate(request)

        stored = AccessToken.objects.select_related("user").get(pk=token.pk)
        assert loaded.user is user
        assert [
            (loaded.pk, loaded.user_id, loaded.application_id),
            (loaded.expires, loaded.scope, loaded.resource),
            (user.pk, user.email, user.is_active, user.is_staff, user.is_superuser),
        ] == [
            (stored.pk, stored.user_id, stored.application_id),
            (stored.expires, stored.scope, stored.resource),
            (stored.user.pk, stored.user.email, True, True, False),
        ]

    def test_missing_token(self, api_client):
        self._assert_unauthorized(api_client.get(CURRENT_URL))

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Basic dXNlcjpwYXNz",
            "bearer",
            "Token abc",
            "Bearer \x7f",
        ],
    )
    def test_malformed_authorization_header(self, api_client, header):
        self._assert_unauthorized(api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=header))

    def test_unknown_token(self, api_client):
        response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION="Bearer not-a-real-token")
        self._assert_unauthorized(response)

    def test_expired_token(self, api_client):
        token = AccessTokenFactory(expires=timezone.now() - timedelta(seconds=1))
        ParkingSessionFactory(driver=token.user)

        response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")

        self._assert_unauthorized(response)

    def test_revoked_token(self, api_client):
        token = AccessTokenFactory()
        ParkingSessionFactory(driver=token.user)
        raw_token = token.raw_token
        token.revoke()

        response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {raw_token}")

        self._assert_unauthorized(response)

    def test_token_in_query_string_is_refused(self, api_client):
        token = AccessTokenFactory()
        ParkingSessionFactory(driver=token.user)

        response = api_client.get(CURRENT_URL, {"access_token": token.raw_token})

        self._assert_unauthorized(response)

    def test_inactive_driver_token(self, api_client):
        token = AccessTokenFactory(user__is_active=False)

        response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")

        self._assert_unauthorized(response)


def test_valid_token_of_a_parking_with_no_session_is_404_not_401(api_client):
    token = AccessTokenFactory()
    SecuredParkingFactory()
    response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
    assert response.status_code == 404


@pytest.mark.parametrize("state", [State.ENTERING, State.ACTIVE, State.EXITING])
@pytest.mark.parametrize("access_points", [0, 3])
@pytest.mark.parametrize("with_tariff", [True, False])
def test_the_fast_path_answers_the_same_bytes_as_the_serializer(
    driver_client, state, access_points, with_tariff
):
    # The current session is built from one flat row; every other session endpoint uses
    # the DRF serializer. The two must never drift apart.
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        state=state,
        # Entering ones must be fresh; parked ones long enough to owe 3 started hours.
        start_time=timezone.now()
        - (timedelta(minutes=5) if state == State.ENTERING else timedelta(hours=2, minutes=5)),
        amount=Decimal("3.50"),
        secured_parking__access_points=access_points,
        secured_parking__name="Parcare Ștefan cel Mare",
    )
    if not with_tariff:
        session.secured_parking.tariff.delete()

    current = driver_client.get(CURRENT_URL)
    detail = driver_client.get(session_url(session.pk))

    assert current.status_code == detail.status_code == 200
    assert current.content == detail.content


def test_the_current_session_follows_the_driver_and_the_clock(make_driver_client):
    # One SQL text for every call: only the driver and the entering deadline change.
    first, second = make_driver_client(), make_driver_client()
    first_session = ParkingSessionFactory(driver=first.driver)
    second_session = ParkingSessionFactory(driver=second.driver, state=State.ENTERING)

    assert first.get(CURRENT_URL).json()["parking_session"]["id"] == first_session.pk
    assert second.get(CURRENT_URL).json()["parking_session"]["id"] == second_session.pk
    ParkingSession.objects.filter(pk=second_session.pk).update(
        start_time=timezone.now() - timedelta(hours=1)
    )
    assert second.get(CURRENT_URL).status_code == 404  # past the entering deadline now
