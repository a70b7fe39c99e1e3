"""Drivers sign in through the mobile app: authorization code + PKCE (S256), RFC 9700.

Everything goes through the real views: the browser part with Django's test client
(CSRF enforced, as in a real browser), the app's token calls as form posts to /o/.
"""

import base64
import hashlib
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from rest_framework.test import APIClient

from core.throttling import ClientIPRateThrottle
from tests.api import CURRENT_URL, SESSIONS_URL, json_body
from tests.factories import (
    MOBILE_APP_REDIRECT_URI,
    DriverFactory,
    MobileApplicationFactory,
    ParkingSessionFactory,
)

AUTHORIZE_URL = "/o/authorize/"
TOKEN_URL = "/o/token/"
REVOKE_URL = "/o/revoke_token/"
INTROSPECT_URL = "/o/introspect/"
LOGIN_URL = "/accounts/login/"
PASSWORD = "correct-horse-battery"  # DriverFactory's password
CLIENT_ID = "parking-mobile-app"

pytestmark = pytest.mark.django_db


class _InputCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.metas: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            attributes = dict(attrs)
            self.inputs[attributes.get("name") or ""] = attributes
        elif tag == "meta":
            self.metas.append(dict(attrs))


def parse_page(html: str) -> _InputCollector:
    collector = _InputCollector()
    collector.feed(html)
    return collector


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, inside RFC 7636's 43..128


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(verifier: str | None, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": MOBILE_APP_REDIRECT_URI,
        "state": "xyz",
        "scope": "driver",
    }
    if verifier is not None:
        params |= {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
    params |= overrides
    return f"{AUTHORIZE_URL}?{urlencode(params)}"


def callback_params(response) -> dict[str, str]:
    """The query of a redirect to the app's callback, one value per key."""
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == MOBILE_APP_REDIRECT_URI
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def post_form(client, url: str, data: dict[str, str]):
    # The app posts application/x-www-form-urlencoded, as RFC 6749 requires.
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")


def exchange_code(client, code: str, verifier: str | None):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": MOBILE_APP_REDIRECT_URI,
        "client_id": CLIENT_ID,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return post_form(client, TOKEN_URL, data)


def refresh(client, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
    return post_form(client, TOKEN_URL, data)


def api_status(access_token: str) -> int:
    client = APIClient()
    return client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code


@pytest.fixture
def mobile_app(db) -> Application:
    return MobileApplicationFactory()


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def signed_in_browser(browser, driver) -> Client:
    """A browser that already went through the login page (proven in the end-to-end test)."""
    browser.force_login(driver)
    return browser


@pytest.fixture
def issue_tokens(mobile_app, signed_in_browser):
    """Run the code + PKCE flow for the signed-in driver; returns the token response body."""

    def issue() -> dict:
        verifier = new_verifier()
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]
        response = exchange_code(Client(), code, verifier)
        assert response.status_code == 200, response.content
        return response.json()

    return issue


@pytest.fixture
def error_page_static(settings):
    # DOT's error page links its stylesheet with {% static %}; tests never run
    # collectstatic, so the manifest storage used with DEBUG off has no entry for it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def test_the_mobile_app_factory_is_a_valid_public_client(mobile_app):
    mobile_app.full_clean()
    assert mobile_app.client_type == Application.CLIENT_PUBLIC
    assert mobile_app.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert mobile_app.skip_authorization is True
    assert mobile_app.redirect_uris == "parkingapp://oauth/callback"


def test_a_driver_signs_in_with_code_and_pkce_and_uses_the_api(mobile_app, browser, driver):
    session = ParkingSessionFactory(driver=driver)
    verifier = new_verifier()

    response = browser.get(authorize_url(verifier))
    assert response.status_code == 302
    login_redirect = urlsplit(response["Location"])
    assert login_redirect.path == LOGIN_URL
    next_url = parse_qs(login_redirect.query)["next"][0]
    assert next_url.startswith(AUTHORIZE_URL)

    response = browser.get(response["Location"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = parse_page(response.content.decode())
    viewports = [m for m in page.metas if m.get("name") == "viewport"]
    assert viewports and "width=device-width" in (viewports[0]["content"] or "")
    assert page.inputs["username"]["autocomplete"] == "email"
    assert page.inputs["password"]["type"] == "password"
    assert page.inputs["next"]["value"] == next_url

    response = browser.post(
        LOGIN_URL,
        {
            "username": driver.email,
            "password": PASSWORD,
            "next": page.inputs["next"]["value"],
            "csrfmiddlewaretoken": page.inputs["csrfmiddlewaretoken"]["value"],
        },
    )
    assert response.status_code == 302, response.content
    assert response["Location"] == next_url

    # No consent screen for the first-party app: straight back to the app with a code.
    callback = callback_params(browser.get(response["Location"]))
    assert set(callback) == {"code", "state", "iss"}
    assert callback["state"] == "xyz"
    # RFC 9207: the issuer, so the app can tell this server's codes from any other's.
    assert callback["iss"].startswith("http://testserver")

    response = exchange_code(Client(), callback["code"], verifier)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "driver"
    assert 14 * 60 <= tokens["expires_in"] <= 15 * 60
    assert tokens["access_token"] and tokens["refresh_token"]
    assert not Grant.objects.exists()  # the code is spent

    response = APIClient().get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == 200, response.content
    assert response.json()["parking_session"]["id"] == session.pk


def test_tokens_are_stored_hashed(issue_tokens, driver):
    tokens = issue_tokens()

    access_token = AccessToken.objects.get(user=driver)
    refresh_token = RefreshToken.objects.get(user=driver)
    assert access_token.token == ""
    assert refresh_token.token == ""
    assert (
        access_token.token_checksum == hashlib.sha256(tokens["access_token"].encode()).hexdigest()
    )
    assert refresh_token.token_checksum == (
        hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()
    )


class TestPkce:
    def test_a_wrong_code_verifier_is_invalid_grant(self, mobile_app, signed_in_browser):
        code = callback_params(signed_in_browser.get(authorize_url(new_verifier())))["code"]

        response = exchange_code(Client(), code, new_verifier())

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert not AccessToken.objects.exists()

    def test_a_missing_code_verifier_is_refused(self, mobile_app, signed_in_browser):
        code = callback_params(signed_in_browser.get(authorize_url(new_verifier())))["code"]

        response = exchange_code(Client(), code, verifier=None)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert not AccessToken.objects.exists()

    def test_an_authorization_request_without_code_challenge_is_refused(
        self, mobile_app, signed_in_browser
    ):
        callback = callback_params(signed_in_browser.get(authorize_url(verifier=None)))

        assert callback["error"] == "invalid_request"
        assert callback["state"] == "xyz"
        assert "code" not in callback
        assert not Grant.objects.exists()

    def test_the_plain_method_is_refused(self, mobile_app, signed_in_browser):
        verifier = new_verifier()
        url = authorize_url(None, code_challenge=verifier, code_challenge_method="plain")

        callback = callback_params(signed_in_browser.get(url))

        assert callback["error"] == "invalid_request"
        assert "code" not in callback
        assert not Grant.objects.exists()

    def test_an_authorization_code_works_only_once(self, mobile_app, signed_in_browser):
        verifier = new_verifier()
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]
        assert exchange_code(Client(), code, verifier).status_code == 200

        response = exchange_code(Client(), code, verifier)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        # Nothing minted by the replay, and the first pair revoked (TestAuthorizationCodeReplay).
        assert not AccessToken.objects.exists()

    def test_an_expired_authorization_code_is_refused(self, mobile_app, signed_in_browser):
        verifier = new_verifier()
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]
        Grant.objects.update(expires=timezone.now() - timedelta(seconds=1))

        response = exchange_code(Client(), code, verifier)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"

    @pytest.mark.parametrize(
        "verifier",
        ["abc", "a" * 42, "a" * 129, "+" + "a" * 42, " " + "a" * 42],
        ids=["3 characters", "42 characters", "129 characters", "plus sign", "space"],
    )
    def test_a_code_verifier_outside_rfc_7636_is_refused(
        self, mobile_app, signed_in_browser, verifier
    ):
        # The challenge is well formed: only the verifier's own shape can refuse it.
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]

        response = exchange_code(Client(), code, verifier)

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_request"
        assert not AccessToken.objects.exists()

    @pytest.mark.parametrize(
        "challenge",
        ["abc", "a" * 42, "a" * 129, "+" + "a" * 42, "=" + "a" * 42],
        ids=["3 characters", "42 characters", "129 characters", "plus sign", "padding"],
    )
    def test_a_code_challenge_outside_rfc_7636_is_refused(
        self, mobile_app, signed_in_browser, challenge
    ):
        url = authorize_url(None, code_challenge=challenge, code_challenge_method="S256")

        callback = callback_params(signed_in_browser.get(url))

        assert callback["error"] == "invalid_request"
        assert callback["state"] == "xyz"
        assert "code" not in callback
        assert not Grant.objects.exists()

    def test_the_longest_verifier_rfc_7636_allows_works(self, mobile_app, signed_in_browser):
        verifier = "a-._~" * 25 + "xyz"  # 128 characters, every unreserved punctuation mark
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]

        assert exchange_code(Client(), code, verifier).status_code == 200


class TestAuthorizationCodeReplay:
    """RFC 6749 §4.1.2: a code used twice was stolen, or leaked; the tokens it issued are
    revoked, whoever holds them."""

    @pytest.fixture(autouse=True)
    def parked(self, driver):
        # The API answers 200 (not 404) to a live token of a driver with a current session.
        ParkingSessionFactory(driver=driver)

    def _code(self, browser) -> tuple[str, str]:
        verifier = new_verifier()
        return callback_params(browser.get(authorize_url(verifier)))["code"], verifier

    def test_a_replayed_code_revokes_the_tokens_it_issued(self, mobile_app, signed_in_browser):
        code, verifier = self._code(signed_in_browser)
        tokens = exchange_code(Client(), code, verifier).json()
        assert api_status(tokens["access_token"]) == 200

        response = exchange_code(Client(), code, verifier)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert api_status(tokens["access_token"]) == 401
        refreshed = refresh(Client(), tokens["refresh_token"])
        assert refreshed.status_code == 400, refreshed.content
        assert refreshed.json()["error"] == "invalid_grant"

    def test_a_replay_also_revokes_the_tokens_refreshed_since(self, mobile_app, signed_in_browser):
        code, verifier = self._code(signed_in_browser)
        first = exchange_code(Client(), code, verifier).json()
        second = refresh(Client(), first["refresh_token"]).json()

        assert exchange_code(Client(), code, verifier).status_code == 400

        assert api_status(second["access_token"]) == 401
        assert refresh(Client(), second["refresh_token"]).status_code == 400

    def test_a_replay_without_the_verifier_still_revokes(self, mobile_app, signed_in_browser):
        code, verifier = self._code(signed_in_browser)
        tokens = exchange_code(Client(), code, verifier).json()

        assert exchange_code(Client(), code, verifier=None).status_code == 400

        assert api_status(tokens["access_token"]) == 401

    def test_a_replay_spares_the_drivers_other_sign_ins(self, mobile_app, signed_in_browser):
        phone_code, phone_verifier = self._code(signed_in_browser)
        tablet_code, tablet_verifier = self._code(signed_in_browser)
        exchange_code(Client(), phone_code, phone_verifier)
        tablet = exchange_code(Client(), tablet_code, tablet_verifier).json()

        assert exchange_code(Client(), phone_code, phone_verifier).status_code == 400

        assert api_status(tablet["access_token"]) == 200
        assert refresh(Client(), tablet["refresh_token"]).status_code == 200

    def test_a_code_never_issued_revokes_nothing(self, issue_tokens):
        tokens = issue_tokens()

        response = exchange_code(Client(), "not-a-code-we-issued", new_verifier())

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert api_status(tokens["access_token"]) == 200


class TestRedirectUriMatching:
    @pytest.mark.parametrize(
        "redirect_uri",
        [
            "parkingapp://OAUTH/callback",
            "PARKINGAPP://oauth/callback",
            "parkingapp://oauth/Callback",
        ],
    )
    def test_a_redirect_uri_is_compared_exactly(
        self, mobile_app, signed_in_browser, error_page_static, redirect_uri
    ):
        response = signed_in_browser.get(authorize_url(new_verifier(), redirect_uri=redirect_uri))

        assert response.status_code == 400
        assert "Location" not in response
        assert not Grant.objects.exists()

    def test_a_token_request_without_the_redirect_uri_is_refused(
        self, mobile_app, signed_in_browser
    ):
        verifier = new_verifier()
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        }

        response = post_form(Client(), TOKEN_URL, data)

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_request"
        assert not AccessToken.objects.exists()

    def test_a_code_asked_for_without_redirect_uri_is_exchanged_with_the_registered_one(
        self, mobile_app, signed_in_browser
    ):
        verifier = new_verifier()
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "state": "xyz",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        code = callback_params(signed_in_browser.get(f"{AUTHORIZE_URL}?{urlencode(params)}"))[
            "code"
        ]

        assert exchange_code(Client(), code, verifier).status_code == 200

    def test_a_token_request_with_another_redirect_uri_is_refused(
        self, mobile_app, signed_in_browser
    ):
        verifier = new_verifier()
        code = callback_params(signed_in_browser.get(authorize_url(verifier)))["code"]
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "parkingapp://OAUTH/callback",
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        }

        response = post_form(Client(), TOKEN_URL, data)

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_request"
        assert not AccessToken.objects.exists()


class TestNulBytes:
    """PostgreSQL refuses NUL in text; a parameter carrying one is the caller's mistake."""

    def test_a_nul_in_the_code_is_400_json(self, mobile_app):
        response = exchange_code(Client(), "abc\x00def", new_verifier())

        assert json_body(response, 400)["errors"][0]["code"] == "bad_request"

    @pytest.mark.parametrize("param", ["code_challenge", "nonce", "state", "scope"])
    def test_a_nul_in_an_authorization_parameter_is_400_json(
        self, mobile_app, signed_in_browser, param
    ):
        url = authorize_url(new_verifier(), **{param: "abc\x00def"})

        response = signed_in_browser.get(url)

        assert json_body(response, 400)["errors"][0]["code"] == "bad_request"
        assert not Grant.objects.exists()

    def test_a_nul_in_an_api_query_parameter_is_400_json(self, driver_client):
        response = driver_client.get(SESSIONS_URL, {"unused": "5\x00"})

        assert json_body(response, 400)["errors"][0]["code"] == "bad_request"

    def test_a_nul_in_a_form_field_name_is_400_json(self, mobile_app):
        response = Client().post(
            TOKEN_URL, "grant_type=authorization_code&co%00de=x",
            content_type="application/x-www-form-urlencoded",
        )  # fmt: skip

        assert json_body(response, 400)["errors"][0]["code"] == "bad_request"


class TestRefusedRequests:
    def test_the_password_grant_is_refused(self, mobile_app, driver):
        data = {
            "grant_type": "password",
            "username": driver.email,
            "password": PASSWORD,
            "client_id": CLIENT_ID,
            "scope": "driver",
        }

        response = post_form(Client(), TOKEN_URL, data)

        assert response.status_code == 400
        assert response.json()["error"] in {"unsupported_grant_type", "unauthorized_client"}
        assert not AccessToken.objects.exists()

    def test_the_implicit_grant_is_refused(self, mobile_app, signed_in_browser):
        response = signed_in_browser.get(authorize_url(new_verifier(), response_type="token"))

        callback = callback_params(response)
        assert callback["error"] in {"unauthorized_client", "unsupported_response_type"}
        assert "access_token" not in response["Location"]
        assert not AccessToken.objects.exists()

    def test_even_a_client_registered_for_the_implicit_grant_is_refused(self, signed_in_browser):
        MobileApplicationFactory(
            client_id="legacy-implicit", authorization_grant_type=Application.GRANT_IMPLICIT
        )
        url = authorize_url(None, response_type="token", client_id="legacy-implicit")

        response = signed_in_browser.get(url)

        assert callback_params(response)["error"] == "unauthorized_client"
        assert "access_token" not in response["Location"]
        assert not AccessToken.objects.exists()

    def test_even_a_client_registered_for_the_password_grant_is_refused(self, driver):
        MobileApplicationFactory(
            client_id="legacy-password", authorization_grant_type=Application.GRANT_PASSWORD
        )
        data = {
            "grant_type": "password",
            "username": driver.email,
            "password": PASSWORD,
            "client_id": "legacy-password",
        }

        response = post_form(Client(), TOKEN_URL, data)

        assert response.status_code == 400
        assert response.json()["error"] in {"unsupported_grant_type", "unauthorized_client"}
        assert not AccessToken.objects.exists()

    def test_an_unregistered_redirect_uri_is_never_redirected_to(
        self, mobile_app, signed_in_browser, error_page_static
    ):
        url = authorize_url(new_verifier(), redirect_uri="evilapp://oauth/callback")

        response = signed_in_browser.get(url)

        assert response.status_code == 400
        assert "Location" not in response
        assert not Grant.objects.exists()

    def test_an_unknown_client_is_refused(self, mobile_app, signed_in_browser, error_page_static):
        response = signed_in_browser.get(authorize_url(new_verifier(), client_id="someone-else"))

        assert response.status_code == 400
        assert "Location" not in response


class TestRefreshRotation:
    def test_a_refresh_gives_a_new_pair_and_retires_the_old_one(self, issue_tokens, driver):
        ParkingSessionFactory(driver=driver)
        first = issue_tokens()

        response = refresh(Client(), first["refresh_token"])

        assert response.status_code == 200, response.content
        second = response.json()
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        assert second["token_type"] == "Bearer"
        assert api_status(second["access_token"]) == 200
        assert api_status(first["access_token"]) == 401

    def test_an_old_refresh_token_no_longer_works(self, issue_tokens):
        first = issue_tokens()
        assert refresh(Client(), first["refresh_token"]).status_code == 200

        response = refresh(Client(), first["refresh_token"])

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"

    def test_replaying_an_old_refresh_token_revokes_the_whole_family(self, issue_tokens):
        first = issue_tokens()
        second = refresh(Client(), first["refresh_token"]).json()

        assert refresh(Client(), first["refresh_token"]).status_code == 400

        assert api_status(second["access_token"]) == 401
        response = refresh(Client(), second["refresh_token"])
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"

    def test_replay_protection_spares_the_drivers_other_sign_ins(self, issue_tokens):
        phone = issue_tokens()
        tablet = issue_tokens()
        assert refresh(Client(), phone["refresh_token"]).status_code == 200

        assert refresh(Client(), phone["refresh_token"]).status_code == 400

        assert refresh(Client(), tablet["refresh_token"]).status_code == 200

    def test_a_deactivated_driver_cannot_refresh(self, issue_tokens, driver):
        tokens = issue_tokens()
        driver.is_active = False
        driver.save(update_fields=["is_active"])

        response = refresh(Client(), tokens["refresh_token"])

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


def test_a_revoked_access_token_is_refused_by_the_api(issue_tokens):
    tokens = issue_tokens()

    response = post_form(
        Client(),
        REVOKE_URL,
        {
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            "client_id": CLIENT_ID,
        },
    )

    assert response.status_code == 200, response.content
    assert api_status(tokens["access_token"]) == 401
    # The refresh token went with it: revoking is signing the app out, not a 15-minute pause.
    refreshed = refresh(Client(), tokens["refresh_token"])
    assert refreshed.status_code == 400, refreshed.content
    assert refreshed.json()["error"] == "invalid_grant"


def test_revoking_the_refresh_token_signs_the_app_out(issue_tokens):
    tokens = issue_tokens()

    response = post_form(
        Client(),
        REVOKE_URL,
        {
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": CLIENT_ID,
        },
    )

    assert response.status_code == 200, response.content
    assert api_status(tokens["access_token"]) == 401
    assert refresh(Client(), tokens["refresh_token"]).status_code == 400


class TestLoginPage:
    def _login_page(self, browser) -> _InputCollector:
        response = browser.get(LOGIN_URL, {"next": authorize_url(new_verifier())})
        assert response.status_code == 200
        return parse_page(response.content.decode())

    def _post(self, browser, page, email: str, password: str):
        return browser.post(
            LOGIN_URL,
            {
                "username": email,
                "password": password,
                "next": page.inputs["next"]["value"],
                "csrfmiddlewaretoken": page.inputs["csrfmiddlewaretoken"]["value"],
            },
        )

    def test_a_wrong_password_shows_the_form_again_with_an_error(self, browser, driver):
        page = self._login_page(browser)

        response = self._post(browser, page, driver.email, "not-the-password")

        assert response.status_code == 200
        assert "Location" not in response
        html = response.content.decode()
        assert 'role="alert"' in html
        assert "Please enter a correct email address and password" in html
        again = parse_page(html)
        assert again.inputs["username"]["value"] == driver.email
        assert again.inputs["next"]["value"] == page.inputs["next"]["value"]
        assert "_auth_user_id" not in browser.session

    def test_the_email_is_case_insensitive(self, browser):
        driver = DriverFactory(email="ana.pop@example.com")
        page = self._login_page(browser)

        response = self._post(browser, page, "  Ana.Pop@Example.COM ", PASSWORD)

        assert response.status_code == 302, response.content
        assert response["Location"] == page.inputs["next"]["value"]
        assert browser.session["_auth_user_id"] == str(driver.pk)

    def test_a_deactivated_driver_cannot_sign_in(self, browser):
        driver = DriverFactory(is_active=False)
        page = self._login_page(browser)

        response = self._post(browser, page, driver.email, PASSWORD)

        assert response.status_code == 200
        assert "_auth_user_id" not in browser.session

    def test_an_offsite_next_is_not_followed(self, browser, driver):
        response = browser.get(LOGIN_URL)
        page = parse_page(response.content.decode())
        page.inputs["next"]["value"] = "https://evil.example.com/"

        response = self._post(browser, page, driver.email, PASSWORD)

        assert response.status_code == 302
        assert not response["Location"].startswith("https://evil.example.com")


class TestIntrospection:
    def test_the_endpoint_exists_and_refuses_anonymous_callers(self, issue_tokens):
        tokens = issue_tokens()

        response = post_form(Client(), INTROSPECT_URL, {"token": tokens["access_token"]})

        assert response.status_code in {401, 403}

    @pytest.mark.parametrize("hash_client_secret", [False, True])
    def test_the_public_client_id_alone_does_not_open_it(
        self, mobile_app, issue_tokens, hash_client_secret
    ):
        # Registered without a secret; hashing would store a hash of "", which "" matches.
        mobile_app.hash_client_secret = hash_client_secret
        mobile_app.client_secret = ""
        mobile_app.save()
        tokens = issue_tokens()

        response = post_form(
            Client(), INTROSPECT_URL, {"token": tokens["access_token"], "client_id": CLIENT_ID}
        )

        assert response.status_code in {401, 403}

    def test_an_empty_secret_in_basic_auth_does_not_open_it(self, issue_tokens):
        tokens = issue_tokens()
        credentials = base64.b64encode(f"{CLIENT_ID}:".encode()).decode()

        response = Client().post(
            INTROSPECT_URL,
            urlencode({"token": tokens["access_token"]}),
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )

        assert response.status_code in {401, 403}

    def test_a_confidential_resource_server_can_introspect(self, issue_tokens, driver):
        MobileApplicationFactory(
            client_id="resource-server",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            redirect_uris="",
            skip_authorization=False,
            hash_client_secret=True,
            client_secret="resource-server-secret",
        )
        tokens = issue_tokens()
        credentials = base64.b64encode(b"resource-server:resource-server-secret").decode()

        response = Client().post(
            INTROSPECT_URL,
            urlencode({"token": tokens["access_token"]}),
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["active"] is True
        assert body["username"] == driver.email
        assert body["client_id"] == CLIENT_ID
        assert body["scope"] == "driver"

    def test_a_driver_token_cannot_introspect(self, issue_tokens):
        tokens = issue_tokens()

        response = Client().post(
            INTROSPECT_URL,
            urlencode({"token": tokens["access_token"]}),
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
        )

        assert response.status_code in {401, 403}


def test_signing_in_without_the_app_ends_on_a_page_not_a_404(browser, driver):
    browser.get(LOGIN_URL)
    response = browser.post(
        LOGIN_URL,
        {"username": driver.email, "password": "correct-horse-battery",
         "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
        follow=True,
    )  # fmt: skip

    assert response.status_code == 200
    assert b"You are signed in" in response.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_with_one_refresh_token_mint_at_most_one_live_pair(mobile_app, driver):
    """Two phones (or a retry storm) racing one refresh token must not fork the session."""
    browser = Client()
    browser.force_login(driver)
    verifier = new_verifier()
    code = callback_params(browser.get(authorize_url(verifier)))["code"]
    tokens = exchange_code(Client(), code, verifier).json()
    barrier = threading.Barrier(8)

    def refresh_once(_):
        barrier.wait(timeout=10)
        try:
            response = refresh(Client(raise_request_exception=False), tokens["refresh_token"])
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(refresh_once, range(8)))

    assert all(status in (200, 400) for status, _ in answers), answers
    winners = [body for status, body in answers if status == 200]
    assert len(winners) == 1, answers
    live_pairs = [body for body in winners if api_status(body["access_token"]) == 200]
    assert len(live_pairs) <= 1
    assert AccessToken.objects.filter(user=driver).count() <= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_exchanges_of_one_code_give_one_pair_and_invalid_grant_to_the_rest(
    mobile_app, driver, monkeypatch
):
    """A retrying app (or a thief racing it) sends one code several times at once."""
    monkeypatch.setattr(ClientIPRateThrottle, "rate", "1000/min", raising=False)
    browser = Client()
    browser.force_login(driver)
    for _ in range(20):
        verifier = new_verifier()
        code = callback_params(browser.get(authorize_url(verifier)))["code"]
        barrier = threading.Barrier(8)

        def exchange_once(_, code=code, verifier=verifier, barrier=barrier):
            barrier.wait(timeout=10)
            try:
                response = exchange_code(Client(raise_request_exception=False), code, verifier)
                return response.status_code, response.json()
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(exchange_once, range(8)))

        assert sorted(status for status, _ in answers) == [200] + [400] * 7, answers
        assert {body["error"] for status, body in answers if status == 400} == {"invalid_grant"}
        # The seven others were replays of a used code: the pair it issued is revoked.
        (tokens,) = [body for status, body in answers if status == 200]
        assert api_status(tokens["access_token"]) == 401


class TestAuthorizationServerMetadata:
    """RFC 8414: AppAuth and similar libraries discover the endpoints from the issuer."""

    def test_the_issuer_is_the_iss_of_the_authorization_response(
        self, mobile_app, signed_in_browser
    ):
        callback = callback_params(signed_in_browser.get(authorize_url(new_verifier())))
        metadata = Client().get("/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == callback["iss"] == "http://testserver"

    def test_it_names_the_endpoints_and_only_what_the_server_takes(self, client):
        response = client.get("/.well-known/oauth-authorization-server")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        metadata = response.json()
        issuer = metadata["issuer"]
        assert metadata["authorization_endpoint"] == f"{issuer}{AUTHORIZE_URL}"
        assert metadata["token_endpoint"] == f"{issuer}{TOKEN_URL}"
        assert metadata["revocation_endpoint"] == f"{issuer}{REVOKE_URL}"
        assert metadata["introspection_endpoint"] == f"{issuer}{INTROSPECT_URL}"
        assert metadata["response_types_supported"] == ["code"]
        assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["scopes_supported"] == ["driver"]
        assert "none" in metadata["token_endpoint_auth_methods_supported"]
        assert metadata["authorization_response_iss_parameter_supported"] is True

    def test_over_https_the_issuer_is_https(self, client):
        response = client.get("/.well-known/oauth-authorization-server", secure=True)
        assert response.json()["issuer"] == "https://testserver"
        assert response.json()["token_endpoint"] == f"https://testserver{TOKEN_URL}"
