"""Django's stock middleware runs everywhere; what it does for browsers (sessions, CSRF
cookies, messages) stays out of the bearer-token API's answers."""

import pytest
from django.test import Client

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
