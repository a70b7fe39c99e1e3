"""The OpenAPI schema is one a client can be generated from, and the live answers keep it:
readable operation ids, one error component per status with the codes enumerated, only
the statuses each operation can answer, headers, descriptions and examples, and bodies
that validate against it (OpenAPI 3.1, with openapi-schema-validator)."""

import inspect
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec

from accounts import serializers as account_serializers
from accounts import views as account_views
from core import serializers as core_serializers
from parking import exceptions as parking_exceptions
from parking import serializers as parking_serializers
from parking import views as parking_views
from parking.models import State
from smart_keys import serializers as smart_key_serializers
from tests.api import (
    API,
    CURRENT_URL,
    SECURED_PARKINGS_URL,
    SESSIONS_URL,
    SIGN_UP_URL,
    SMART_KEYS_URL,
    session_action,
    session_url,
    start_session,
)
from tests.barriers import PASSAGES_URL, install_barrier
from tests.factories import ParkingSessionFactory, SecuredParkingFactory, TariffFactory

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples"
OPERATION_IDS = {
    ("post", "/accounts"): "signUp",
    ("get", "/parking_sessions"): "listParkingSessions",
    ("post", "/parking_sessions"): "startParkingSession",
    ("get", "/parking_sessions/current"): "getCurrentParkingSession",
    ("get", "/parking_sessions/{session_id}"): "getParkingSession",
    ("post", "/parking_sessions/{session_id}/entrance_try"): "spendEntranceTry",
    ("post", "/parking_sessions/{session_id}/enter"): "confirmEntrance",
    ("post", "/parking_sessions/{session_id}/exit"): "requestExit",
    ("post", "/parking_sessions/{session_id}/exit_try"): "spendExitTry",
    ("post", "/parking_sessions/{session_id}/finalize"): "finalizeParkingSession",
    ("post", "/parking_sessions/{session_id}/cancel"): "cancelParkingSession",
    ("post", "/parking_sessions/{session_id}/open_barrier"): "openBarrier",
    ("get", "/secured_parkings"): "listSecuredParkings",
    ("get", "/smart_keys"): "listSmartKeys",
    ("delete", "/account"): "deleteAccount",
    ("get", "/account/export"): "exportAccount",
    ("get", "/parking_sessions/{session_id}/payment"): "getParkingSessionPayment",
    ("post", "/parking_sessions/{session_id}/pay"): "payParkingSession",
    ("get", "/parking_sessions/{session_id}/receipt"): "getReceipt",
    ("get", "/payment_methods"): "listPaymentMethods",
    ("post", "/payment_methods"): "addPaymentMethod",
    ("delete", "/payment_methods/{card_id}"): "removePaymentMethod",
    ("post", "/payment_methods/{card_id}/default"): "setDefaultPaymentMethod",
    ("post", "/passages"): "uploadPassageRecords",
    ("get", "/secured_parkings/{parking_id}/time_statement"): "getTimeStatement",
}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path.removeprefix(API), operation


def operation(schema, method: str, path: str) -> dict:
    return schema["paths"][API + path][method]


def body_schema(schema, method: str, path: str, status: int) -> dict:
    response = operation(schema, method, path)["responses"][str(status)]
    return {**response["content"]["application/json"]["schema"], "components": schema["components"]}


def assert_valid(schema, method: str, path: str, response) -> None:
    """The live ``response`` is what the schema says ``method path`` answers with its status."""
    validator = OAS31Validator(
        body_schema(schema, method, path, response.status_code), format_checker=oas31_format_checker
    )
    errors = [error.message for error in validator.iter_errors(response.json())]
    assert not errors, (method, path, response.status_code, errors, response.json())


class TestAClientCanBeGenerated:
    def test_the_schema_is_valid_openapi_3_1(self, schema):
        assert schema["openapi"] == "3.1.0"
        validate_spec(json.loads(json.dumps(schema)))

    def test_operation_ids_name_what_each_operation_does(self, schema):
        found = {(method, path): op["operationId"] for method, path, op in operations(schema)}
        assert found == OPERATION_IDS

    def test_one_error_component_per_status_and_no_per_operation_copies(self, schema):
        statuses = {s for _, _, op in operations(schema) for s in op["responses"] if s >= "400"}
        errors = {name for name in schema["components"]["schemas"] if "Error" in name}
        assert errors == {f"Error{status}" for status in statuses}
        for _, _, op in operations(schema):
            for status, response in op["responses"].items():
                if status >= "400":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == f"#/components/schemas/Error{status}"

    def test_sign_up_needs_no_credentials_and_everything_else_a_token(self, schema):
        for _, path, op in operations(schema):
            if path == "/accounts":
                assert op["security"] == [] and "401" not in op["responses"]
            else:
                assert op["security"] == [{"oauth2": []}, {"bearer": []}], path


class TestErrorCodes:
    def test_every_domain_code_the_api_answers_is_in_the_409_enum(self, schema):
        enum = schema["components"]["schemas"]["Error409"]["properties"]["errors"]["items"]
        codes = set(enum["properties"]["code"]["enum"])
        raised = {
            error.code
            for _, error in inspect.getmembers(parking_exceptions, inspect.isclass)
            if issubclass(error, parking_exceptions.ParkingError)
            and error is not parking_exceptions.ParkingError
        }
        assert raised <= codes
        assert "barrier_gateway_not_configured" in codes

    @pytest.mark.parametrize(
        ("method", "path", "status", "codes"),
        [
            ("post", "/parking_sessions", "409", ["open_session_exists", "parking_unavailable"]),
            ("post", "/parking_sessions", "422", ["idempotency_key_reused"]),
            (
                "post",
                "/parking_sessions/{session_id}/entrance_try",
                "409",
                ["invalid_session_state", "no_tries_left"],
            ),
            ("post", "/parking_sessions/{session_id}/enter", "409", ["invalid_session_state"]),
            (
                "post",
                "/parking_sessions/{session_id}/open_barrier",
                "502",
                ["barrier_gateway_error", "barrier_gateway_unreachable"],
            ),
            (
                "post",
                "/parking_sessions/{session_id}/open_barrier",
                "504",
                ["barrier_gateway_timeout"],
            ),
            ("get", "/parking_sessions/current", "404", ["not_found"]),
            ("get", "/parking_sessions/current", "400", ["bad_request"]),
            ("get", "/smart_keys", "401", ["not_authenticated"]),
        ],
    )
    def test_each_operation_says_which_codes_it_answers(self, schema, method, path, status, codes):
        op = operation(schema, method, path)
        assert op["x-error-codes"][status] == codes
        for code in codes:
            assert f"`{code}`" in op["responses"][status]["description"]

    def test_the_409_state_is_the_session_state_enum(self, schema):
        state = schema["components"]["schemas"]["Error409"]["properties"]["state"]
        assert state["$ref"] == "#/components/schemas/StateEnum"
        assert set(schema["components"]["schemas"]["StateEnum"]["enum"]) == set(State.values)

    def test_gateway_failures_have_their_own_server_error_components(self, schema):
        for status in ("502", "504"):
            error = schema["components"]["schemas"][f"Error{status}"]
            assert error["properties"]["type"]["enum"] == ["server_error"]


class TestOnlyTheStatusesAnOperationCanAnswer:
    def test_reads_list_no_body_errors_and_no_405(self, schema):
        for method, path, op in operations(schema):
            assert "405" not in op["responses"], path
            if method == "get":
                assert not {"413", "415", "422", "409"} & set(op["responses"]), path

    def test_sign_up_lists_no_404(self, schema):
        assert "404" not in operation(schema, "post", "/accounts")["responses"]

    def test_a_list_without_pages_lists_no_404(self, schema):
        assert "404" not in operation(schema, "get", "/smart_keys")["responses"]


class TestHeaders:
    def test_retry_after_on_429_and_503(self, schema):
        for _, path, op in operations(schema):
            for status in ("429", "503"):
                assert "Retry-After" in op["responses"][status]["headers"], (path, status)

    def test_www_authenticate_on_401(self, schema):
        responses = operation(schema, "get", "/parking_sessions/current")["responses"]
        assert "WWW-Authenticate" in responses["401"]["headers"]

    def test_every_answer_carries_x_request_id(self, schema):
        for _, path, op in operations(schema):
            for status, response in op["responses"].items():
                assert "X-Request-ID" in response["headers"], (path, status)

    @pytest.mark.parametrize(
        ("path", "status"),
        [("/parking_sessions", "201"), ("/parking_sessions/{session_id}/open_barrier", "200")],
    )
    def test_idempotent_operations_take_a_key_and_say_when_they_replay(self, schema, path, status):
        op = operation(schema, "post", path)
        assert "Idempotency-Key" in [p["name"] for p in op["parameters"] if p["in"] == "header"]
        assert op["responses"][status]["headers"]["Idempotent-Replayed"]["schema"] == {
            "type": "string",
            "enum": ["true"],
        }

    def test_answers_carry_the_documented_headers(self, driver_client):
        parking = SecuredParkingFactory()
        first = start_session(driver_client, parking, idempotency_key="k-1")
        replay = start_session(driver_client, parking, idempotency_key="k-1")
        assert replay["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
        assert first["X-Request-ID"]


class TestDescriptions:
    def test_every_operation_and_response_is_described(self, schema):
        for _, path, op in operations(schema):
            assert op["summary"] and op["description"], path
            for status, response in op["responses"].items():
                assert response["description"], (path, status)

    def test_no_docstring_of_the_code_is_in_the_docs(self, schema):
        text = json.dumps(schema)
        modules = [
            parking_views,
            parking_serializers,
            smart_key_serializers,
            account_views,
            account_serializers,
            core_serializers,
        ]
        for module in modules:
            for _, cls in inspect.getmembers(module, inspect.isclass):
                doc = inspect.getdoc(cls)
                if doc and cls.__module__ == module.__name__:
                    first_line = doc.splitlines()[0]
                    assert json.dumps(first_line)[1:-1] not in text, (cls, first_line)

    def test_the_current_session_example_is_the_seeds(self, schema):
        content = operation(schema, "get", "/parking_sessions/current")["responses"]["200"]
        (example,) = content["content"]["application/json"]["examples"].values()
        seed = json.loads((EXAMPLE / "current-parking-session.json").read_text())
        assert example["value"] == seed
        body = body_schema(schema, "get", "/parking_sessions/current", 200)
        OAS31Validator(body, format_checker=oas31_format_checker).validate(seed)


class TestBodies:
    def test_money_and_currency_have_patterns(self, schema):
        schemas = schema["components"]["schemas"]
        assert schemas["ParkingSessionBody"]["properties"]["amount"]["pattern"] == r"^\d+\.\d{2}$"
        assert schemas["Tariff"]["properties"]["price_per_period"]["pattern"]
        assert schemas["Tariff"]["properties"]["daily_cap"]["type"] == ["string", "null"]
        for name in ("ParkingSessionBody", "SecuredParking"):
            assert schemas[name]["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"

    def test_bodies_that_refuse_extra_fields_say_so(self, schema):
        schemas = schema["components"]["schemas"]
        for name in ("StartParkingSessionRequest", "DriverSignUpRequest", "OpenBarrierRequest"):
            assert schemas[name]["additionalProperties"] is False, name

    def test_a_nullable_object_is_a_one_of_with_null(self, schema):
        tariff = schema["components"]["schemas"]["SecuredParking"]["properties"]["tariff"]
        assert tariff == {"oneOf": [{"$ref": "#/components/schemas/Tariff"}, {"type": "null"}]}

    def test_the_receipt_is_json_or_a_printable_page_and_its_errors_only_json(self, schema):
        op = operation(schema, "get", "/parking_sessions/{session_id}/receipt")
        responses = op["responses"]
        assert responses["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Receipt"
        }
        assert responses["200"]["content"]["text/html"]["schema"] == {"type": "string"}
        # Chosen by Accept alone: no ?format= parameter.
        assert [p["name"] for p in op["parameters"]] == ["session_id"]
        for status, response in responses.items():
            if status != "200":
                assert list(response["content"]) == ["application/json"], status

    @pytest.mark.parametrize(
        ("value", "text"),
        [("5", "5.00"), ("5.0000", "5.00"), ("40.00", "40.00"), ("0.1250", "0.125")],
    )
    def test_one_money_format(self, value, text):
        assert core_serializers.money_text(Decimal(value)) == text


class TestLiveAnswersKeepTheSchema:
    def test_a_whole_journey(self, schema, driver_client):
        parking = SecuredParkingFactory()
        started = start_session(driver_client, parking)
        assert_valid(schema, "post", "/parking_sessions", started)
        session_id = started.json()["parking_session"]["id"]
        assert_valid(schema, "get", "/parking_sessions/current", driver_client.get(CURRENT_URL))
        for action in ("entrance_try", "enter", "exit", "exit_try", "finalize"):
            response = session_action(driver_client, session_id, action)
            assert response.status_code == 200, response.content
            assert_valid(schema, "post", f"/parking_sessions/{{session_id}}/{action}", response)
        detail = driver_client.get(session_url(session_id))
        assert_valid(schema, "get", "/parking_sessions/{session_id}", detail)
        assert_valid(schema, "get", "/parking_sessions", driver_client.get(SESSIONS_URL))
        assert_valid(schema, "get", "/smart_keys", driver_client.get(SMART_KEYS_URL))

    def test_parkings_with_a_tariff_a_sub_cent_price_and_none(self, schema, driver_client):
        SecuredParkingFactory(tariff=None)
        priced = SecuredParkingFactory(tariff=None)
        TariffFactory(secured_parking=priced, price_per_period=Decimal("0.125"), daily_cap=None)
        SecuredParkingFactory()
        response = driver_client.get(SECURED_PARKINGS_URL)
        assert_valid(schema, "get", "/secured_parkings", response)
        tariffs = [parking["tariff"] for parking in response.json()["results"]]
        assert None in tariffs
        assert "0.125" in [tariff["price_per_period"] for tariff in tariffs if tariff]

    def test_errors(self, schema, driver_client, api_client):
        assert_valid(schema, "get", "/parking_sessions/current", driver_client.get(CURRENT_URL))
        assert_valid(schema, "get", "/parking_sessions/current", api_client.get(CURRENT_URL))
        refused = driver_client.post(SESSIONS_URL, {"secured_parking_id": "x"}, format="json")
        assert_valid(schema, "post", "/parking_sessions", refused)
        session = ParkingSessionFactory(driver=driver_client.driver)
        conflict = session_action(driver_client, session.pk, "enter")
        assert conflict.status_code == 409 and conflict.json()["state"] == "active"
        assert_valid(schema, "post", "/parking_sessions/{session_id}/enter", conflict)
        again = start_session(driver_client, SecuredParkingFactory())
        assert again.status_code == 409
        assert_valid(schema, "post", "/parking_sessions", again)
        weak = api_client.post(SIGN_UP_URL, {"email": "a@example.com", "password": "1"}, "json")
        assert_valid(schema, "post", "/accounts", weak)
        nul = api_client.post(SIGN_UP_URL, {"email": "a\x00@example.com", "password": "1"}, "json")
        assert "null_characters_not_allowed" in [error["code"] for error in nul.json()["errors"]]
        assert_valid(schema, "post", "/accounts", nul)

    def test_passage_uploads(self, schema, driver_client, make_driver_client):
        parking = SecuredParkingFactory(access_points=1)
        barrier = install_barrier(parking.access_points.get(direction="entrance"))
        started = start_session(make_driver_client(), parking).json()
        barrier.present(started["smart_key"]["access_command"], timezone.now())
        records = [*barrier.hand_over(), "UAEB"]

        answer = driver_client.post(PASSAGES_URL, {"records": records}, format="json")
        assert [r["status"] for r in answer.json()["results"]] == ["accepted", "refused"]
        assert answer.json()["acknowledgements"]
        assert_valid(schema, "post", "/passages", answer)
        refused = driver_client.post(PASSAGES_URL, {"records": []}, format="json")
        assert_valid(schema, "post", "/passages", refused)

    @pytest.mark.parametrize("page", ["", "0", "x", "99"])
    def test_a_page_that_names_no_page_is_404(self, schema, driver_client, page):
        response = driver_client.get(f"{SESSIONS_URL}?page={page}")
        assert response.status_code == 404, response.content
        assert_valid(schema, "get", "/parking_sessions", response)
