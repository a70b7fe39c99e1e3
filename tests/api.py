"""The driver API as the tests call it: its URLs, a client with a real bearer token, the
requests many tests make, and reading answers in the API's one error format
(parking_api/exceptions.py)."""

from rest_framework.test import APIClient

from tests.factories import AccessTokenFactory

API = "/api/car_driver"
SIGN_UP_URL = f"{API}/accounts"
SECURED_PARKINGS_URL = f"{API}/secured_parkings"
SMART_KEYS_URL = f"{API}/smart_keys"
SESSIONS_URL = f"{API}/parking_sessions"
CURRENT_URL = f"{SESSIONS_URL}/current"

ERROR_TYPES = {"validation_error", "client_error", "server_error"}


class DriverClient(APIClient):
    """An APIClient that sends a real django-oauth-toolkit bearer token for ``driver``."""

    def __init__(self, driver, **kwargs):
        super().__init__(**kwargs)
        self.driver = driver
        self.access_token = AccessTokenFactory(user=driver)
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {self.access_token.raw_token}")


def session_url(session_id, action: str | None = None) -> str:
    """``parking_sessions/<id>``, or ``parking_sessions/<id>/<action>`` with an action."""
    return f"{SESSIONS_URL}/{session_id}" + (f"/{action}" if action else "")


def start_session(client, parking, *, idempotency_key: str | None = None, **headers):
    """``POST parking_sessions`` for ``parking``; the response, whatever it is."""
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    return client.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json", **headers)


def session_action(client, session_id: int, action: str):
    """``POST parking_sessions/<id>/<action>`` without a body; the response, whatever it is."""
    return client.post(session_url(session_id, action))


def json_body(response, status: int):
    """The JSON body of an answer that must have ``status``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return response.json()


def new_session(client, parking) -> dict:
    """Start a session that must succeed (201); its body."""
    return json_body(start_session(client, parking), 201)


def act(client, session_id: int, action: str) -> dict:
    """An action that must succeed (200); the body it answers."""
    return json_body(session_action(client, session_id, action), 200)


def error_body(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert body["type"] in ERROR_TYPES, body
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
    return body


def error_codes(response) -> list[str]:
    return [error["code"] for error in error_body(response)["errors"]]


def error_detail(response) -> str:
    """The first error's message (non-validation errors have exactly one)."""
    return error_body(response)["errors"][0]["detail"]


def field_errors(response) -> dict[str, list[str]]:
    """Validation errors by field: ``{"secured_parking_id": ["…"], …}``."""
    body = error_body(response)
    assert body["type"] == "validation_error", body
    fields: dict[str, list[str]] = {}
    for error in body["errors"]:
        fields.setdefault(error["attr"], []).append(error["detail"])
    return fields


def error_code(response) -> str:
    """The code of an answer that carries exactly one error."""
    codes = error_codes(response)
    assert len(codes) == 1, codes
    return codes[0]


def one_error(code: str, detail: str, error_type: str = "client_error") -> dict:
    """The whole body of an answer with a single error that names no field."""
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}


def enable_api_docs_sign_in(settings, origin: str):
    """API_DOCS_SIGN_IN on, and the demo data seeded with the docs' client coming back to
    ``origin`` over http, which DEBUG allows for local development. Seeding saves the demo
    card at Stripe: the test needs the ``localstripe`` fixture."""
    from django.utils import timezone

    from parking.demo_data import seed_demo

    settings.API_DOCS_SIGN_IN = True
    schemes = settings.OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": [*schemes, "http"],
    }
    return seed_demo(now=timezone.now(), api_docs_origins=[origin])
