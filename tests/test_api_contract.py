"""The API describes itself (OpenAPI) and fails in one predictable JSON format."""

import json
import logging
import re

import pytest
from django.db import OperationalError
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from core.throttling import ClientIPRateThrottle, DriverRateThrottle
from parking import views as parking_views
from tests.api import (
    API,
    CURRENT_URL,
    SESSIONS_URL,
    SIGN_UP_URL,
    error_body,
    error_codes,
    session_action,
    session_url,
    start_session,
)
from tests.factories import ParkingSessionFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


def api_url_patterns(patterns=None, prefix: str = ""):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            yield from api_url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and (prefix + str(pattern.pattern)).startswith(
            API.lstrip("/") + "/"
        ):
            yield prefix + str(pattern.pattern)


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


class TestOpenApiSchema:
    def test_the_schema_is_valid_openapi_3(self, schema):
        validate_schema(schema)
        assert schema["openapi"].startswith("3.")

    def test_every_api_url_is_described(self, schema):
        documented = set(schema["paths"])
        for pattern in api_url_patterns():
            path = "/" + re.sub(r"<int:(\w+)>", r"{\1}", pattern)
            assert path in documented, path

    def test_the_oauth2_scheme_is_authorization_code_with_the_projects_urls(self, schema):
        oauth2 = schema["components"]["securitySchemes"]["oauth2"]
        flow = oauth2["flows"]["authorizationCode"]
        assert flow["authorizationUrl"] == "/o/authorize/"
        assert flow["tokenUrl"] == "/o/token/"
        assert schema["paths"][CURRENT_URL]["get"]["security"] == [{"oauth2": []}, {"bearer": []}]
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    @pytest.mark.parametrize(
        ("path", "method", "statuses"),
        [
            (
                "/parking_sessions/current",
                "get",
                {"200", "400", "401", "404", "429", "500", "503"},
            ),
            (
                "/parking_sessions",
                "post",
                {"201", "400", "401", "409", "413", "415", "422", "429", "500", "503"},
            ),
            (
                "/parking_sessions/{session_id}/finalize",
                "post",
                {"200", "400", "401", "404", "409", "413", "415", "429", "500", "503"},
            ),
        ],
    )
    def test_each_operation_lists_the_statuses_it_can_answer(self, schema, path, method, statuses):
        responses = schema["paths"][API + path][method]["responses"]
        assert set(responses) == statuses

    def test_the_schema_and_the_docs_are_served(self, api_client):
        schema_response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
        assert schema_response.status_code == 200
        assert CURRENT_URL in schema_response.json()["paths"]

        docs = api_client.get("/api/docs/")
        assert docs.status_code == 200
        page = docs.content.decode()
        # Swagger UI comes from this server (drf-spectacular-sidecar), never a CDN.
        assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
        assert "cdn" not in page.lower()


class TestOneErrorFormat:
    def test_400(self, driver_client):
        response = driver_client.post(SESSIONS_URL, {}, format="json")
        assert response.status_code == 400
        assert error_body(response)["type"] == "validation_error"
        assert error_body(response)["errors"][0]["attr"] == "secured_parking_id"

    def test_401(self, api_client):
        response = api_client.get(CURRENT_URL)
        assert response.status_code == 401
        assert error_codes(response) == ["not_authenticated"]

    def test_403_from_a_view_that_is_not_ours(self, driver_client):
        # DOT's introspection endpoint answers a driver's token with a bare 403.
        response = driver_client.post("/o/introspect/", {"token": "x"})
        assert response.status_code == 403
        assert error_codes(response) == ["permission_denied"]

    @pytest.mark.parametrize(
        "path", [f"{API}/nowhere", "/api/nowhere", "/o/nowhere", session_url("x")]
    )
    def test_404_for_unknown_urls(self, driver_client, path):
        response = driver_client.get(path)
        assert response.status_code == 404
        assert error_codes(response) == ["not_found"]

    def test_405(self, driver_client):
        response = driver_client.delete(CURRENT_URL)
        assert response.status_code == 405
        assert error_codes(response) == ["method_not_allowed"]

    def test_409(self, driver_client):
        session = ParkingSessionFactory(driver=driver_client.driver)
        response = session_action(driver_client, session.pk, "enter")
        assert response.status_code == 409
        assert error_codes(response) == ["invalid_session_state"]
        assert response.json()["state"] == "active"

    def test_413(self, driver_client, settings):
        body = json.dumps({"secured_parking_id": 1, "pad": "x" * settings.API_MAX_BODY_BYTES})
        response = driver_client.post(SESSIONS_URL, body, content_type="application/json")
        assert response.status_code == 413
        assert error_codes(response) == ["request_too_large"]

    def test_415(self, driver_client):
        response = driver_client.post(
            SESSIONS_URL, "secured_parking_id=1", content_type="text/plain"
        )
        assert response.status_code == 415
        assert error_codes(response) == ["unsupported_media_type"]

    def test_422(self, driver_client):
        first, second = SecuredParkingFactory(), SecuredParkingFactory()
        started = start_session(driver_client, first, idempotency_key="k-1")
        assert started.status_code == 201, started.content
        response = start_session(driver_client, second, idempotency_key="k-1")
        assert response.status_code == 422
        assert error_codes(response) == ["idempotency_key_reused"]

    def test_500_for_an_unhandled_error(self, driver_client, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(parking_views, "current_session_for", broken)
        driver_client.raise_request_exception = False
        response = driver_client.get(CURRENT_URL)
        assert response.status_code == 500
        assert error_body(response)["type"] == "server_error"
        assert "a bug" not in response.content.decode()

    def test_503_when_the_database_cannot_be_reached(self, driver_client, monkeypatch):
        def unreachable(*args, **kwargs):
            raise OperationalError("could not connect to server: Connection refused")

        monkeypatch.setattr(parking_views, "current_session_for", unreachable)
        driver_client.raise_request_exception = False
        response = driver_client.get(CURRENT_URL)
        assert response.status_code == 503
        assert error_codes(response) == ["service_unavailable"]
        assert response["Retry-After"]

    def test_oauth_errors_are_json_too_except_the_authorization_page(self, client, driver):
        token = client.post("/o/token/", {"grant_type": "authorization_code", "code": "x"})
        assert token.status_code == 401
        assert token["Content-Type"].startswith("application/json")
        # The authorization endpoint is a page for people (tests/test_api_docs_sign_in.py).
        client.force_login(driver)
        response = client.get("/o/authorize/", {"client_id": "nobody", "response_type": "code"})
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")


class TestThrottling:
    def test_a_driver_is_throttled_with_retry_after(self, driver_client, monkeypatch):
        monkeypatch.setattr(DriverRateThrottle, "rate", "3/min", raising=False)
        statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        response = driver_client.get(CURRENT_URL)
        assert error_codes(response) == ["throttled"]
        assert int(response["Retry-After"]) == 30  # the rest of the current window

    def test_each_driver_has_an_own_budget(self, make_driver_client, monkeypatch):
        monkeypatch.setattr(DriverRateThrottle, "rate", "1/min", raising=False)
        first, second = make_driver_client(), make_driver_client()
        assert first.get(CURRENT_URL).status_code == 404
        assert first.get(CURRENT_URL).status_code == 429
        assert second.get(CURRENT_URL).status_code == 404

    @pytest.mark.parametrize("path", ["/o/token/", "/accounts/login/", SIGN_UP_URL])
    def test_sign_in_endpoints_are_throttled_per_ip(self, client, monkeypatch, path):
        monkeypatch.setattr(ClientIPRateThrottle, "rate", "2/min", raising=False)
        statuses = [
            client.post(path, {"x": "y"}, REMOTE_ADDR="203.0.113.7").status_code for _ in range(3)
        ]
        assert 429 not in statuses[:2] and statuses[2] == 429
        assert client.post(path, {"x": "y"}, REMOTE_ADDR="203.0.113.8").status_code != 429


class TestHardening:
    @pytest.mark.parametrize(
        "path",
        [
            f"{SESSIONS_URL}/%00",
            f"{SESSIONS_URL}/%FF%FE",
            f"{SESSIONS_URL}?page=%00",
            f"{SESSIONS_URL}?page=%FF",
            f"{API}/parking%00_sessions",
        ],
    )
    def test_nul_bytes_and_invalid_utf8_in_urls_never_500(self, driver_client, path):
        response = driver_client.get(path)
        assert response.status_code in (400, 404), response.content
        error_body(response)

    @pytest.mark.parametrize(
        "header",
        [
            {"HTTP_IDEMPOTENCY_KEY": "a\x00b"},
            {"HTTP_IDEMPOTENCY_KEY": "\xff\xfe"},
            {"HTTP_X_REQUEST_ID": "a\x00b"},
            {"HTTP_ACCEPT": "application/json\x00"},
            {"HTTP_AUTHORIZATION": "Bearer a\x00b"},
            {"HTTP_AUTHORIZATION": "Bearer \xff\xfe"},
        ],
    )
    def test_nul_bytes_and_invalid_utf8_in_headers_never_500(self, driver_client, header):
        parking = SecuredParkingFactory()
        response = start_session(driver_client, parking, **header)
        assert response.status_code < 500, response.content

    def test_a_nul_page_size_is_400(self, driver_client):
        assert driver_client.get(f"{SESSIONS_URL}?page_size=%00").status_code == 400

    def test_request_ids_are_kept_or_made(self, driver_client):
        kept = driver_client.get(CURRENT_URL, HTTP_X_REQUEST_ID="trace-123")
        made = driver_client.get(CURRENT_URL, HTTP_X_REQUEST_ID="not ok\n")
        assert kept["X-Request-ID"] == "trace-123"
        assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])

    def test_request_log_lines_carry_metadata_and_no_secrets(self, driver_client, caplog):
        session = ParkingSessionFactory(driver=driver_client.driver)
        with caplog.at_level(logging.INFO, logger="parking_api.requests"):
            driver_client.get(CURRENT_URL, HTTP_X_REQUEST_ID="trace-9")
        (record,) = [r for r in caplog.records if r.name == "parking_api.requests"]
        assert record.request_id == "trace-9"
        assert (record.method, record.path, record.status) == ("GET", CURRENT_URL, 200)
        assert record.driver_id == driver_client.driver.pk
        assert record.duration_ms >= 0
        logged = json.dumps(record.__dict__, default=str)
        assert driver_client.access_token.raw_token not in logged
        assert session.smart_key.access_command not in logged


class TestHealth:
    def test_liveness(self, client):
        response = client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}

    def test_readiness_checks_database_and_cache(self, client):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": True, "cache": True}

    def test_readiness_fails_when_the_database_does_not_answer(self, client, monkeypatch):
        from parking_api import health

        monkeypatch.setattr(health, "_database_answers", lambda: False)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"


def test_production_settings_pass_the_deploy_checks(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" * 20
        + "-production-like-secret-key-with-enough-entropy-1234567890",
        "DJANGO_ALLOWED_HOSTS": "parking.example.com",
        "DJANGO_HTTPS": "1",
        "DJANGO_BEHIND_TLS_PROXY": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy-check.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
