"""Swagger UI at /api/docs/ signs in as its own public OAuth client (authorization code +
PKCE) when API_DOCS_SIGN_IN is on, and offers a bearer scheme besides; the authorization
endpoint's error pages say what went wrong."""

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import Application

from parking.demo_data import seed_demo
from tests.api import CURRENT_URL, enable_api_docs_sign_in
from tests.test_oauth_flow import (
    AUTHORIZE_URL,
    TOKEN_URL,
    exchange_code,
    new_verifier,
    post_form,
    s256,
)

pytestmark = pytest.mark.django_db

DOCS_CLIENT_ID = "parking-api-docs"
DOCS_REDIRECT_URI = "http://testserver/api/docs/oauth2-redirect.html"


@pytest.fixture
def docs_sign_in(settings, localstripe):
    return enable_api_docs_sign_in(settings, "http://testserver")


def docs_authorize_url(verifier: str, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": DOCS_CLIENT_ID,
        "redirect_uri": DOCS_REDIRECT_URI,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "swagger-state",
        "scope": "driver",
    } | overrides
    return f"{AUTHORIZE_URL}?{urlencode(params)}"


def oauth2_config(page: str) -> dict | None:
    found = re.search(r"ui\.initOAuth\((.*?)\);", page, re.S)
    return json.loads(found.group(1)) if found else None


class TestSignInOn:
    def test_seed_demo_registers_the_docs_client(self, docs_sign_in):
        client = docs_sign_in.api_docs_client
        assert client.client_id == DOCS_CLIENT_ID
        assert client.client_type == Application.CLIENT_PUBLIC
        assert client.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
        assert client.redirect_uris == DOCS_REDIRECT_URI
        assert client.client_secret == ""
        client.full_clean()

    def test_swagger_ui_is_told_the_client_and_pkce(self, docs_sign_in, client):
        page = client.get("/api/docs/").content.decode()
        assert oauth2_config(page) == {
            "clientId": DOCS_CLIENT_ID,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": "driver",
            "appName": "Secured Parking API docs",
        }

    def test_a_driver_signs_in_through_the_docs_and_calls_the_api(self, docs_sign_in):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(docs_sign_in.driver)
        verifier = new_verifier()

        authorized = browser.get(docs_authorize_url(verifier))
        assert authorized.status_code == 302, authorized.content
        callback = urlsplit(authorized["Location"])
        assert f"{callback.scheme}://{callback.netloc}{callback.path}" == DOCS_REDIRECT_URI
        answer = {key: values[0] for key, values in parse_qs(callback.query).items()}
        assert answer["state"] == "swagger-state" and answer["iss"] == "http://testserver"

        # The redirect page runs Swagger UI's script, which hands the answer to the docs
        # window through window.opener: no opener policy may cut it off.
        page = browser.get(authorized["Location"])
        assert page.status_code == 200
        assert "/swagger-ui-dist/oauth2-redirect.js" in page.content.decode()
        assert page["Cross-Origin-Opener-Policy"] == "unsafe-none"

        # What Swagger UI then posts from the docs page.
        token = post_form(
            Client(),
            TOKEN_URL,
            {
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": DOCS_REDIRECT_URI,
                "client_id": DOCS_CLIENT_ID,
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.content
        access_token = token.json()["access_token"]
        current = Client().get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}")
        assert current.status_code == 200
        assert current.json()["parking_session"]["id"] == docs_sign_in.session.pk

    def test_without_the_verifier_the_code_is_worth_nothing(self, docs_sign_in):
        browser = Client()
        browser.force_login(docs_sign_in.driver)
        authorized = browser.get(docs_authorize_url(new_verifier()))
        code = parse_qs(urlsplit(authorized["Location"]).query)["code"][0]
        response = exchange_code(Client(), code, verifier=None)
        assert response.status_code == 400

    def test_the_sign_in_page_of_the_docs_popup_keeps_its_opener(self, docs_sign_in, client):
        docs = client.get(AUTHORIZE_URL + "?" + urlsplit(docs_authorize_url(new_verifier())).query)
        popup = client.get(docs["Location"])
        assert popup.status_code == 200
        assert popup["Cross-Origin-Opener-Policy"] == "unsafe-none"

    def test_the_mobile_apps_sign_in_page_keeps_the_strict_opener_policy(
        self, docs_sign_in, client
    ):
        page = client.get("/accounts/login/?next=/o/authorize/%3Fclient_id%3Dparking-mobile-app")
        assert page["Cross-Origin-Opener-Policy"] == "same-origin"


class TestSignInOff:
    def test_no_client_no_redirect_page_and_no_client_id_in_the_docs(
        self, settings, client, localstripe
    ):
        settings.API_DOCS_SIGN_IN = False
        demo = seed_demo(now=timezone.now())
        assert demo.api_docs_client is None
        assert not Application.objects.filter(client_id=DOCS_CLIENT_ID).exists()
        assert client.get("/api/docs/oauth2-redirect.html?code=x").status_code == 404
        page = client.get("/api/docs/")
        assert page.status_code == 200 and oauth2_config(page.content.decode()) is None

    def test_production_has_it_off(self):
        import os
        import subprocess
        import sys

        env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50}
        env.pop("API_DOCS_SIGN_IN", None)
        code = "from django.conf import settings; print(settings.API_DOCS_SIGN_IN)"
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert result.stdout.strip() == "False"


class TestTheBearerScheme:
    def test_the_docs_offer_a_token_to_paste(self, client):
        schema = client.get("/api/schema/?format=json").json()
        assert schema["components"]["securitySchemes"]["bearer"] == {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from `/o/token/`.",
        }


class TestOAuthErrorPages:
    def assert_page(self, response, reason: str) -> str:
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        page = response.content.decode()
        assert reason in page
        assert "<code>invalid_request</code>" in page
        return page

    def test_an_unknown_client(self, client, driver):
        client.force_login(driver)
        response = client.get(AUTHORIZE_URL, {"client_id": "nobody", "response_type": "code"})
        self.assert_page(response, "This app is not known to Secured Parking.")

    def test_a_redirect_uri_the_client_did_not_register(self, docs_sign_in, client):
        client.force_login(docs_sign_in.driver)
        response = client.get(
            docs_authorize_url(new_verifier(), redirect_uri="https://evil.example/cb")
        )
        self.assert_page(response, "is not one this app registered")

    def test_in_the_persons_language(self, client, driver):
        client.force_login(driver)
        response = client.get(
            AUTHORIZE_URL,
            {"client_id": "nobody", "response_type": "code"},
            HTTP_ACCEPT_LANGUAGE="ro",
        )
        page = self.assert_page(response, "Această aplicație nu este cunoscută de Secured Parking.")
        assert "Autentificarea a eșuat" in page and '<html lang="ro">' in page

    def test_no_client_id(self, client, driver):
        client.force_login(driver)
        response = client.get(AUTHORIZE_URL, {"response_type": "code"})
        self.assert_page(response, "The app did not say which app it is.")
