"""``Idempotency-Key`` on ``POST parking_sessions``: a retry replays the first answer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from parking.idempotency import purge_expired_records
from parking.models import IdempotencyRecord, ParkingSession, State
from smart_keys.models import SmartKey
from tests.api import (
    SESSIONS_URL,
    act,
    error_codes,
    field_errors,
    json_body,
    session_action,
    start_session,
)
from tests.factories import DriverFactory, ParkingSessionFactory, SecuredParkingFactory

KEY = "6f1d7c2e-8a4b-4c39-9e0f-2d5b7a1c3e90"

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    return {
        "sessions": ParkingSession.objects.count(),
        "keys": SmartKey.objects.count(),
        "idempotency_records": IdempotencyRecord.objects.count(),
    }


class TestRetries:
    def test_a_retry_with_the_same_key_replays_the_first_answer(self, driver_client):
        parking = SecuredParkingFactory(access_points=2)
        first = start_session(driver_client, parking, idempotency_key=KEY)

        retry = start_session(driver_client, parking, idempotency_key=KEY)

        assert json_body(retry, 201) == json_body(first, 201)
        assert "Idempotent-Replayed" not in first
        assert retry["Idempotent-Replayed"] == "true"
        assert row_counts() == {"sessions": 1, "keys": 1, "idempotency_records": 1}
        session = ParkingSession.objects.get()
        assert retry.json()["parking_session"]["id"] == session.pk
        assert retry.json()["smart_key"]["id"] == session.smart_key_id

    def test_a_retry_formatted_differently_is_the_same_request(self, driver_client):
        parking = SecuredParkingFactory()
        first = start_session(driver_client, parking, idempotency_key=KEY)

        retry = driver_client.post(
            SESSIONS_URL,
            f'{{\n  "secured_parking_id" :   {parking.pk}\n}}',
            content_type="application/json; charset=utf-8",
            HTTP_IDEMPOTENCY_KEY=KEY,
        )

        assert json_body(retry, 201) == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert ParkingSession.objects.count() == 1

    def test_a_retry_after_the_driver_moved_on_still_replays_the_first_answer(self, driver_client):
        parking = SecuredParkingFactory()
        first = json_body(start_session(driver_client, parking, idempotency_key=KEY), 201)
        session_id = first["parking_session"]["id"]
        assert session_action(driver_client, session_id, "enter").status_code == 200

        retry = start_session(driver_client, parking, idempotency_key=KEY)

        assert json_body(retry, 201) == first
        assert retry.json()["parking_session"]["state"] == "entering"
        assert retry["Idempotent-Replayed"] == "true"
        assert ParkingSession.objects.get().state == State.ACTIVE

    def test_a_different_key_while_a_session_is_open_is_409(self, driver_client):
        parking = SecuredParkingFactory()
        first = json_body(start_session(driver_client, parking, idempotency_key="first-key"), 201)

        second = start_session(driver_client, parking, idempotency_key="second-key")

        assert second.status_code == 409, second.content
        assert error_codes(second) == ["open_session_exists"]
        assert second.json()["parking_session_id"] == first["parking_session"]["id"]
        assert "Idempotent-Replayed" not in second
        assert row_counts() == {"sessions": 1, "keys": 1, "idempotency_records": 1}
        assert not IdempotencyRecord.objects.filter(key="second-key").exists()

    def test_without_a_key_nothing_is_recorded(self, driver_client):
        json_body(start_session(driver_client, SecuredParkingFactory()), 201)

        assert not IdempotencyRecord.objects.exists()


class TestReusedKeys:
    def test_the_same_key_for_another_parking_is_422_and_creates_nothing(self, driver_client):
        json_body(start_session(driver_client, SecuredParkingFactory(), idempotency_key=KEY), 201)
        before = row_counts()

        response = start_session(driver_client, SecuredParkingFactory(), idempotency_key=KEY)

        assert response.status_code == 422, response.content
        assert error_codes(response) == ["idempotency_key_reused"]
        assert row_counts() == before

    def test_the_same_key_for_another_parking_is_422_even_once_the_first_session_ended(
        self, driver_client
    ):
        first = json_body(
            start_session(driver_client, SecuredParkingFactory(), idempotency_key=KEY), 201
        )
        act(driver_client, first["parking_session"]["id"], "cancel")
        before = row_counts()

        response = start_session(driver_client, SecuredParkingFactory(), idempotency_key=KEY)

        assert response.status_code == 422, response.content
        assert error_codes(response) == ["idempotency_key_reused"]
        assert row_counts() == before


class TestKeysArePerDriver:
    def test_another_driver_with_the_same_key_gets_their_own_session(
        self, driver_client, make_driver_client
    ):
        parking = SecuredParkingFactory(access_points=1)
        other_client = make_driver_client()
        mine = json_body(start_session(driver_client, parking, idempotency_key=KEY), 201)

        theirs = start_session(other_client, parking, idempotency_key=KEY)

        body = json_body(theirs, 201)
        assert "Idempotent-Replayed" not in theirs
        assert body["parking_session"]["id"] != mine["parking_session"]["id"]
        assert body["smart_key"]["access_command"] != mine["smart_key"]["access_command"]
        session = ParkingSession.objects.get(driver=other_client.driver)
        assert body["parking_session"]["id"] == session.pk
        assert row_counts() == {"sessions": 2, "keys": 2, "idempotency_records": 2}

    def test_another_drivers_key_with_another_body_is_not_a_reuse(
        self, driver_client, make_driver_client
    ):
        json_body(start_session(driver_client, SecuredParkingFactory(), idempotency_key=KEY), 201)

        response = start_session(make_driver_client(), SecuredParkingFactory(), idempotency_key=KEY)

        assert json_body(response, 201)
        assert "Idempotent-Replayed" not in response


class TestFailedRequestsAreNotStored:
    def test_after_a_409_for_an_open_session_the_retry_runs_for_real(self, driver_client):
        open_session = ParkingSessionFactory(driver=driver_client.driver, state=State.ENTERING)
        parking = SecuredParkingFactory()
        refused = start_session(driver_client, parking, idempotency_key=KEY)
        assert refused.status_code == 409, refused.content
        assert error_codes(refused) == ["open_session_exists"]
        assert not IdempotencyRecord.objects.exists()
        act(driver_client, open_session.pk, "cancel")

        retry = start_session(driver_client, parking, idempotency_key=KEY)

        body = json_body(retry, 201)
        assert "Idempotent-Replayed" not in retry
        assert body["smart_key"]["secured_parking_id"] == parking.pk
        assert IdempotencyRecord.objects.get().key == KEY

    def test_after_a_409_for_an_inactive_parking_the_retry_runs_for_real(self, driver_client):
        parking = SecuredParkingFactory(is_active=False)
        refused = start_session(driver_client, parking, idempotency_key=KEY)
        assert refused.status_code == 409, refused.content
        assert error_codes(refused) == ["parking_unavailable"]
        assert not IdempotencyRecord.objects.exists()
        parking.is_active = True
        parking.save()

        retry = start_session(driver_client, parking, idempotency_key=KEY)

        assert json_body(retry, 201)
        assert "Idempotent-Replayed" not in retry
        assert ParkingSession.objects.filter(driver=driver_client.driver).count() == 1

    def test_after_a_400_the_retry_with_a_fixed_body_runs_for_real(self, driver_client):
        parking = SecuredParkingFactory()
        bad = driver_client.post(
            SESSIONS_URL,
            {"secured_parking_id": "abc"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=KEY,
        )
        assert bad.status_code == 400, bad.content
        assert set(field_errors(bad)) == {"secured_parking_id"}
        assert not IdempotencyRecord.objects.exists()

        retry = start_session(driver_client, parking, idempotency_key=KEY)

        assert json_body(retry, 201)
        assert "Idempotent-Replayed" not in retry
        assert ParkingSession.objects.count() == 1


class TestInvalidKeys:
    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("", id="empty"),
            pytest.param("k" * 256, id="256-chars"),
            pytest.param("has space", id="space"),
            pytest.param("tab\tinside", id="tab"),
            pytest.param("clé-1", id="latin-1"),
            pytest.param("ключ", id="cyrillic"),
            pytest.param("clé-1".encode().decode("latin-1"), id="utf-8-bytes-as-sent"),
        ],
    )
    def test_an_invalid_key_is_400_naming_the_header_and_writes_nothing(self, driver_client, key):
        parking = SecuredParkingFactory()

        response = start_session(driver_client, parking, idempotency_key=key)

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"Idempotency-Key"}
        assert row_counts() == {"sessions": 0, "keys": 0, "idempotency_records": 0}

    @pytest.mark.parametrize(
        "key",
        ["k" * 255, "a", KEY, "!#$%&'*+-.^_`|~"],
        ids=["255-chars", "1-char", "uuid", "punct"],
    )
    def test_a_valid_key_is_accepted(self, driver_client, key):
        response = start_session(driver_client, SecuredParkingFactory(), idempotency_key=key)

        assert json_body(response, 201)
        assert IdempotencyRecord.objects.get().key == key


class TestPurge:
    def test_the_retention_is_24_hours(self, settings):
        assert settings.IDEMPOTENCY_KEY_RETENTION == timedelta(hours=24)

    def test_records_older_than_the_retention_are_removed_and_newer_ones_stay(self, settings):
        now = timezone.now()
        retention = settings.IDEMPOTENCY_KEY_RETENTION
        ages = {
            "two-days": timedelta(days=2),
            "just-past": retention + timedelta(seconds=1),
            "just-within": retention - timedelta(seconds=1),
            "an-hour": timedelta(hours=1),
            "just-now": timedelta(0),
        }
        for key, age in ages.items():
            IdempotencyRecord.objects.create(
                driver=DriverFactory(),
                key=key,
                request_fingerprint="0" * 64,
                response_status=201,
                response_body={},
                created_at=now - age,
            )

        removed = purge_expired_records(now=now)

        assert removed == 2
        remaining = set(IdempotencyRecord.objects.values_list("key", flat=True))
        assert remaining == {"just-within", "an-hour", "just-now"}

    def test_once_purged_a_key_can_be_used_again(self, driver_client, settings):
        parking = SecuredParkingFactory()
        first = json_body(start_session(driver_client, parking, idempotency_key=KEY), 201)
        act(driver_client, first["parking_session"]["id"], "cancel")
        IdempotencyRecord.objects.update(
            created_at=timezone.now() - settings.IDEMPOTENCY_KEY_RETENTION - timedelta(minutes=1)
        )

        assert purge_expired_records(now=timezone.now()) == 1
        again = start_session(driver_client, parking, idempotency_key=KEY)

        body = json_body(again, 201)
        assert "Idempotent-Replayed" not in again
        assert body["parking_session"]["id"] != first["parking_session"]["id"]
        assert ParkingSession.objects.count() == 2
