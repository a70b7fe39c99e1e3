"""Django's browser middleware runs for the admin, the login form and /o/, not under /api/
(parking_api.browser_middleware); what it does for browsers (sessions, CSRF cookies,
messages) stays out of the bearer-token API's answers."""

import pytest
from django.test import Client
from django.utils.module_loading import import_string
from whitenoise.middleware import WhiteNoiseMiddleware

from tests.api import API, CURRENT_URL
from tests.factories import ParkingSessionFactory

pytestmark = pytest.mark.django_db


def test_api_answers_carry_no_session_or_csrf_machinery(driver_client):
    ParkingSessionFactory(driver=driver_client.driver)

    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["Content-Length"] == str(len(response.content))
    # What the security middleware adds still comes with every answer.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_api_errors_have_a_content_length_too(api_client):
    response = api_client.get(f"{API}/nowhere")

    assert response.status_code == 404
    assert response["Content-Length"] == str(len(response.content))


def test_the_admin_still_sets_and_checks_its_csrf_cookie():
    browser = Client(enforce_csrf_checks=True)

    page = browser.get("/admin/login/")
    refused = browser.post("/admin/login/", {"username": "x", "password": "y"})

    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert refused.status_code == 403


def test_the_oauth_pages_keep_the_login_session(client, driver):
    client.force_login(driver)

    response = client.get("/o/authorize/", {"client_id": "nobody", "response_type": "code"})

    # Signed in through the session: DOT judges the request, it does not ask for a login.
    assert response.status_code == 400


def test_a_missing_trailing_slash_is_redirected_under_api_too(api_client):
    response = api_client.get("/api/docs")

    assert response.status_code == 301
    assert response["Location"] == "/api/docs/"


@pytest.mark.parametrize(
    "middleware",
    [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
)
def test_browser_middleware_is_skipped_under_api_only(driver_client, monkeypatch, middleware):
    middleware_class = import_string(middleware)
    calls = []
    original = middleware_class.process_request

    def recording(self, request):
        calls.append(request.path)
        return original(self, request)

    monkeypatch.setattr(middleware_class, "process_request", recording)

    assert driver_client.get(CURRENT_URL).status_code == 404
    assert Client().get("/admin/login/").status_code == 200

    assert calls == ["/admin/login/"]


def test_static_files_are_not_looked_up_under_api(driver_client, monkeypatch):
    looked_up = []
    original = WhiteNoiseMiddleware.__call__

    def recording(self, request):
        looked_up.append(request.path)
        return original(self, request)

    monkeypatch.setattr(WhiteNoiseMiddleware, "__call__", recording)

    assert driver_client.get(CURRENT_URL).status_code == 404
    assert Client().get("/admin/login/").status_code == 200

    assert looked_up == ["/admin/login/"]
