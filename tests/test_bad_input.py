"""Bad input to the driver API: always a JSON 4xx naming what is wrong, never a 500 or HTML,
and nothing written."""

from datetime import timedelta

import pytest
from django.utils import timezone

from parking.models import IdempotencyRecord, ParkingSession, State
from smart_keys.models import SmartKey
from tests.api import (
    SESSIONS_URL,
    error_body,
    error_codes,
    error_detail,
    field_errors,
    json_body,
    one_error,
    session_url,
)
from tests.factories import ParkingSessionFactory, SecuredParkingFactory, finished_sessions

PAGE_SIZE_CAP = 100  # parking_api.pagination: more than this gives this
ACTIONS = ["entrance_try", "enter", "exit", "exit_try", "finalize", "cancel"]
# The state in which each action succeeds, so a 400 is the only thing stopping it.
STATE_FOR_ACTION = {
    "entrance_try": State.ENTERING,
    "enter": State.ENTERING,
    "exit": State.ACTIVE,
    "exit_try": State.EXITING,
    "finalize": State.EXITING,
    "cancel": State.ENTERING,
}

MULTIPART_BODY = (
    '--B\r\nContent-Disposition: form-data; name="secured_parking_id"\r\n\r\n%d\r\n--B--\r\n'
)

pytestmark = pytest.mark.django_db


def stored_rows() -> dict[str, list[dict]]:
    """Every row a start or an action could write, to compare before and after a request."""
    return {
        "sessions": list(ParkingSession.objects.order_by("pk").values()),
        "keys": list(SmartKey.objects.order_by("pk").values()),
        "idempotency_records": list(IdempotencyRecord.objects.order_by("pk").values()),
    }


def post_start(client, body, **extra):
    # Always with an Idempotency-Key, so a request that got too far would leave a record too.
    return client.post(
        SESSIONS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="bad-input-test-key", **extra
    )


def unknown_parking_id() -> int:
    parking = SecuredParkingFactory()
    parking_id = parking.pk
    parking.delete()
    return parking_id


class TestStartingASession:
    def test_a_good_request_starts_a_session(self, driver_client):
        # The control for every test below: the same request with a good body works.
        parking = SecuredParkingFactory()

        response = post_start(driver_client, {"secured_parking_id": parking.pk})

        assert json_body(response, 201)["smart_key"]["secured_parking_id"] == parking.pk
        assert ParkingSession.objects.filter(driver=driver_client.driver).count() == 1

    @pytest.mark.parametrize(
        "bad_value",
        [
            pytest.param(lambda pk: "abc", id="letters"),
            pytest.param(lambda pk: str(pk), id="digits-in-a-string"),
            pytest.param(lambda pk: f"{pk}.0", id="decimal-in-a-string"),
            pytest.param(lambda pk: f" {pk} ", id="padded-digits-in-a-string"),
            pytest.param(lambda pk: True, id="true"),
            pytest.param(lambda pk: pk + 0.5, id="fraction"),
            pytest.param(lambda pk: None, id="null"),
            pytest.param(lambda pk: [pk], id="list"),
            pytest.param(lambda pk: {"id": pk}, id="object"),
            pytest.param(lambda pk: "", id="empty-string"),
            pytest.param(lambda pk: -pk, id="negative"),
            pytest.param(lambda pk: 0, id="zero"),
            pytest.param(lambda pk: 2**63, id="2**63"),
            pytest.param(lambda pk: 10**30, id="10**30"),
            pytest.param(lambda pk: 2**63 - 1, id="largest-id-but-unknown"),
            pytest.param(lambda pk: unknown_parking_id(), id="deleted-parking"),
        ],
    )
    def test_a_bad_secured_parking_id_is_400_and_writes_nothing(self, driver_client, bad_value):
        parking = SecuredParkingFactory()
        value = bad_value(parking.pk)
        before = stored_rows()

        response = post_start(driver_client, {"secured_parking_id": value})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"secured_parking_id"}
        assert stored_rows() == before

    def test_a_missing_secured_parking_id_is_400_naming_it(self, driver_client):
        SecuredParkingFactory()
        before = stored_rows()

        response = post_start(driver_client, {})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"secured_parking_id"}
        assert stored_rows() == before

    @pytest.mark.parametrize(
        "forbidden",
        [
            {"amount": "0"},
            {"amount": "0.00"},
            {"state": "finished"},
            {"state": "active"},
            {"driver": 1},
            {"end_time": "2030-01-01T00:00:00+00:00"},
            {"entrance_remaining_tries": 99},
            {"smart_key": {"access_command": "x"}},
            {"parking_id": 1},
            {"colour": "red"},
            {"amount": "0", "state": "finished"},
        ],
        ids=lambda fields: "+".join(fields),
    )
    def test_a_field_the_client_may_not_set_is_400_naming_it(self, driver_client, forbidden):
        parking = SecuredParkingFactory()
        before = stored_rows()

        response = post_start(driver_client, {"secured_parking_id": parking.pk, **forbidden})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == set(forbidden)
        assert stored_rows() == before

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b'{"secured_parking_id": ', id="truncated"),
            pytest.param(b"{'secured_parking_id': 1}", id="single-quotes"),
            pytest.param(b'{"secured_parking_id": 1,}', id="trailing-comma"),
            pytest.param(b'{"secured_parking_id": NaN}', id="NaN"),
            pytest.param(b'{"secured_parking_id": Infinity}', id="Infinity"),
            pytest.param(b'{"secured_parking_id": 1}\xff', id="not-utf-8"),
            pytest.param(b'{"secured_parking_id": 1' + b"0" * 5000 + b"}", id="5001-digits"),
            pytest.param(
                b'{"secured_parking_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                id="nested-5000-deep",
            ),
        ],
    )
    def test_malformed_json_is_400(self, driver_client, raw):
        SecuredParkingFactory()
        before = stored_rows()

        response = driver_client.post(
            SESSIONS_URL, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
        )

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["parse_error"]
        assert error_detail(response)
        assert stored_rows() == before

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param('{"secured_parking_id": "junk", "secured_parking_id": %d}', id="top"),
            pytest.param('{"secured_parking_id": %d, "secured_parking_id": %d}', id="same-value"),
            pytest.param('{"secured_parking_id": %d, "x": {"a": 1, "a": 2}}', id="nested"),
            pytest.param('{"secured_parking_id": %d, "x": [{"a": 1, "a": 1}]}', id="in-a-list"),
        ],
    )
    def test_a_key_given_twice_is_400_saying_so(self, driver_client, raw):
        parking = SecuredParkingFactory()
        before = stored_rows()

        body = raw.replace("%d", str(parking.pk))
        response = driver_client.post(
            SESSIONS_URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
        )

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["parse_error"]
        assert "duplicate key" in error_detail(response)
        assert stored_rows() == before

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(lambda pk: [{"secured_parking_id": pk}], id="list-of-a-good-body"),
            pytest.param(lambda pk: [], id="empty-list"),
            pytest.param(lambda pk: "secured_parking_id", id="string"),
            pytest.param(lambda pk: pk, id="number"),
            pytest.param(lambda pk: None, id="null"),
        ],
    )
    def test_a_body_that_is_not_an_object_is_400(self, driver_client, body):
        parking = SecuredParkingFactory()
        before = stored_rows()

        response = driver_client.post(
            SESSIONS_URL, body(parking.pk), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )

        assert response.status_code == 400, response.content
        assert error_body(response)
        assert stored_rows() == before

    @pytest.mark.parametrize(
        ("content_type", "raw"),
        [
            ("text/plain", '{"secured_parking_id": %d}'),
            ("application/x-www-form-urlencoded", "secured_parking_id=%d"),
            ("multipart/form-data; boundary=B", MULTIPART_BODY),
            ("application/xml", "<secured_parking_id>%d</secured_parking_id>"),
        ],
        ids=["text", "form", "multipart", "xml"],
    )
    def test_a_body_that_is_not_json_is_415(self, driver_client, content_type, raw):
        parking = SecuredParkingFactory()
        before = stored_rows()

        response = driver_client.post(
            SESSIONS_URL, raw % parking.pk, content_type=content_type, HTTP_IDEMPOTENCY_KEY="k-1"
        )

        assert response.status_code == 415, response.content
        assert error_codes(response) == ["unsupported_media_type"]
        assert "Unsupported media type" in error_detail(response)
        assert stored_rows() == before

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(
                b'{"secured_parking_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", id="deep"
            ),
            pytest.param(b'{"secured_parking_id": ', id="truncated"),
        ],
    )
    def test_a_malformed_body_without_a_token_is_refused_without_a_500(self, api_client, raw):
        before = stored_rows()

        response = api_client.post(SESSIONS_URL, raw, content_type="application/json")

        assert response.status_code in (400, 401), response.content
        assert error_body(response)
        assert stored_rows() == before

    def test_json_with_a_charset_is_json(self, driver_client):
        parking = SecuredParkingFactory()

        response = driver_client.post(
            SESSIONS_URL,
            f'{{"secured_parking_id": {parking.pk}}}',
            content_type="application/json; charset=utf-8",
        )

        assert json_body(response, 201)


def session_in_state_for(driver, action: str) -> ParkingSession:
    return ParkingSessionFactory(
        driver=driver,
        state=STATE_FOR_ACTION[action],
        start_time=timezone.now() - timedelta(minutes=5),
    )


class TestActions:
    @pytest.mark.parametrize("action", ACTIONS)
    @pytest.mark.parametrize(
        "send",
        [
            pytest.param(lambda client, url: client.post(url), id="no-body"),
            pytest.param(lambda client, url: client.post(url, {}, format="json"), id="{}"),
            pytest.param(
                lambda client, url: client.post(url, b"", content_type="application/json"),
                id="empty-json-body",
            ),
        ],
    )
    def test_an_action_without_input_works(self, driver_client, action, send):
        session = session_in_state_for(driver_client.driver, action)
        before = ParkingSession.objects.values().get(pk=session.pk)

        response = send(driver_client, session_url(session.pk, action))

        assert json_body(response, 200)["parking_session"]["id"] == session.pk
        assert ParkingSession.objects.values().get(pk=session.pk) != before

    @pytest.mark.parametrize("action", ACTIONS)
    @pytest.mark.parametrize(
        "body",
        [
            {"state": "finished"},
            {"amount": "0"},
            {"end_time": "2030-01-01T00:00:00+00:00"},
            {"exit_remaining_tries": 99},
            {"entrance_remaining_tries": 99},
        ],
        ids=lambda body: "+".join(body),
    )
    def test_an_action_with_a_field_is_400_naming_it_and_changes_nothing(
        self, driver_client, action, body
    ):
        session = session_in_state_for(driver_client.driver, action)
        before = stored_rows()

        response = driver_client.post(session_url(session.pk, action), body, format="json")

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == set(body)
        assert stored_rows() == before

    @pytest.mark.parametrize("action", ACTIONS)
    @pytest.mark.parametrize(
        "raw", [b"[]", b'"finished"', b'{"state": '], ids=["list", "string", "malformed"]
    )
    def test_an_action_with_a_body_that_is_not_an_object_is_400(self, driver_client, action, raw):
        session = session_in_state_for(driver_client.driver, action)
        before = stored_rows()

        response = driver_client.post(
            session_url(session.pk, action), raw, content_type="application/json"
        )

        assert response.status_code == 400, response.content
        assert error_body(response)
        assert stored_rows() == before

    @pytest.mark.parametrize("action", ACTIONS)
    def test_an_action_with_a_form_body_is_415(self, driver_client, action):
        session = session_in_state_for(driver_client.driver, action)
        before = stored_rows()

        response = driver_client.post(
            session_url(session.pk, action),
            "state=finished",
            content_type="application/x-www-form-urlencoded",
        )

        assert response.status_code == 415, response.content
        assert error_codes(response) == ["unsupported_media_type"]
        assert stored_rows() == before

    @pytest.mark.parametrize("action", [*ACTIONS, ""])
    @pytest.mark.parametrize("session_id", ["abc", "-1", "1.5", "1e3", "0x1", "%20"])
    def test_a_session_id_that_is_not_a_number_is_404_json(self, driver_client, action, session_id):
        ParkingSessionFactory(driver=driver_client.driver, state=State.ENTERING)
        before = stored_rows()
        url = session_url(session_id, action)

        response = driver_client.post(url) if action else driver_client.get(url)

        assert response.status_code == 404, response.content
        assert error_body(response) == one_error("not_found", "Not found.")
        assert stored_rows() == before


class TestPages:
    @pytest.fixture
    def history_of_21(self, driver_client):
        ParkingSessionFactory.create_batch(
            21,
            driver=driver_client.driver,
            secured_parking=SecuredParkingFactory(),
            state=State.FINISHED,
            end_time=timezone.now() + timedelta(hours=1),
        )

    @pytest.mark.parametrize(
        "page", ["abc", "0", "-1", "1.5", "3", "99999", "", "6556986313203518244126720"]
    )
    def test_a_page_that_does_not_exist_is_404_json(self, driver_client, history_of_21, page):
        response = driver_client.get(SESSIONS_URL, {"page": page})

        assert response.status_code == 404, response.content
        assert error_body(response) == one_error("not_found", "Invalid page.")

    @pytest.mark.parametrize("page", ["1", "2", "last"])
    def test_a_page_that_exists_is_200(self, driver_client, history_of_21, page):
        response = driver_client.get(SESSIONS_URL, {"page": page})

        assert json_body(response, 200)["count"] == 21

    def test_any_page_but_the_first_of_an_empty_history_is_404(self, driver_client):
        assert json_body(driver_client.get(SESSIONS_URL), 200)["results"] == []
        response = driver_client.get(SESSIONS_URL, {"page": 2})
        assert response.status_code == 404, response.content
        assert error_body(response) == one_error("not_found", "Invalid page.")

    @pytest.mark.parametrize("page_size", ["-1", "abc", "0", "1.5", "", "null", "٣"])
    def test_a_bad_page_size_is_400(self, driver_client, history_of_21, page_size):
        response = driver_client.get(SESSIONS_URL, {"page_size": page_size})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"page_size"}

    @pytest.fixture
    def history_over_the_cap(self, driver_client):
        finished_sessions(
            SecuredParkingFactory(),
            [driver_client.driver],
            PAGE_SIZE_CAP + 1,
            first_start=timezone.now() - timedelta(days=PAGE_SIZE_CAP + 2),
            step=timedelta(days=1),
        )

    @pytest.mark.parametrize("page_size", [PAGE_SIZE_CAP + 1, 100000])
    def test_a_page_size_over_the_cap_gets_the_cap(
        self, driver_client, history_over_the_cap, page_size
    ):
        response = driver_client.get(SESSIONS_URL, {"page_size": page_size})

        body = json_body(response, 200)
        assert body["count"] == PAGE_SIZE_CAP + 1
        assert len(body["results"]) == PAGE_SIZE_CAP
        assert body["next"] is not None

    def test_a_good_page_size_is_used(self, driver_client, history_of_21):
        response = driver_client.get(SESSIONS_URL, {"page_size": 5})

        assert len(json_body(response, 200)["results"]) == 5


class TestHostHeader:
    """``ALLOWED_HOSTS`` on every path: paginated lists build absolute URLs from the host."""

    EVIL = {"HTTP_HOST": "evil.example"}

    @pytest.fixture
    def history_of_2(self, driver_client):
        ParkingSessionFactory.create_batch(
            2,
            driver=driver_client.driver,
            secured_parking=SecuredParkingFactory(),
            state=State.FINISHED,
            end_time=timezone.now() + timedelta(hours=1),
        )

    @pytest.mark.parametrize("path", [f"{SESSIONS_URL}?page_size=1", f"{SESSIONS_URL}/current"])
    def test_a_host_not_allowed_is_400_json_under_the_api(self, driver_client, history_of_2, path):
        response = driver_client.get(path, **self.EVIL)

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["bad_request"]

    def test_it_is_refused_before_the_body_size(self, driver_client):
        response = driver_client.post(
            SESSIONS_URL,
            "x",
            content_type="application/json",
            CONTENT_LENGTH="99999999",
            **self.EVIL,
        )

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["bad_request"]

    def test_the_token_endpoint_refuses_it_as_json(self, client):
        response = client.post("/o/token/", {"grant_type": "authorization_code"}, **self.EVIL)

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["bad_request"]

    def test_the_admin_refuses_it_with_djangos_page(self, client):
        response = client.get("/admin/login/", **self.EVIL)

        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")

    def test_an_allowed_host_is_served(self, driver_client, history_of_2):
        response = driver_client.get(f"{SESSIONS_URL}?page_size=1", HTTP_HOST="testserver")

        assert json_body(response, 200)["next"].startswith("http://testserver/")
