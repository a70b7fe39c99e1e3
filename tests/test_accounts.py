"""Signing up: ``POST accounts`` with an email and a password, no token needed."""

import pytest
from django.utils import timezone
from oauth2_provider.models import RefreshToken
from rest_framework.test import APIClient

from accounts.models import UsedAuthorizationCode, User
from accounts.services import (
    EmailAlreadyRegistered,
    record_authorization_code_use,
    register_driver,
)
from tests.api import (
    CURRENT_URL,
    SESSIONS_URL,
    SIGN_UP_URL,
    error_body,
    error_codes,
    error_detail,
    field_errors,
    json_body,
    start_session,
)
from tests.factories import AccessTokenFactory, DriverFactory, SecuredParkingFactory

GOOD_PASSWORD = "violet-tram-harbour-42"
EMAIL = "ana@example.com"

pytestmark = pytest.mark.django_db


def sign_up(client, body):
    return client.post(SIGN_UP_URL, body, format="json")


class TestSigningUp:
    def test_a_driver_signs_up_without_a_token(self, api_client):
        response = sign_up(api_client, {"email": "ana@example.com", "password": GOOD_PASSWORD})

        driver = User.objects.get()
        assert json_body(response, 201) == {"id": driver.pk, "email": "ana@example.com"}
        assert driver.check_password(GOOD_PASSWORD)
        assert driver.password != GOOD_PASSWORD
        assert driver.is_active
        assert not driver.is_staff and not driver.is_superuser

    @pytest.mark.parametrize("email", ["Ana@Example.COM", "ANA@EXAMPLE.COM", "  ana@example.com  "])
    def test_the_email_is_stored_lower_case(self, api_client, email):
        response = sign_up(api_client, {"email": email, "password": GOOD_PASSWORD})

        assert json_body(response, 201)["email"] == "ana@example.com"
        assert User.objects.get().email == "ana@example.com"

    def test_the_new_driver_can_then_use_the_api(self, api_client):
        body = json_body(
            sign_up(api_client, {"email": "ana@example.com", "password": GOOD_PASSWORD}), 201
        )
        token = AccessTokenFactory(user=User.objects.get(pk=body["id"]))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
        parking = SecuredParkingFactory()

        started = start_session(client, parking)

        assert json_body(started, 201)["smart_key"]["secured_parking_id"] == parking.pk
        assert json_body(client.get(CURRENT_URL), 200)

    def test_signing_up_does_not_sign_in(self, api_client):
        signed_up = sign_up(api_client, {"email": "ana@example.com", "password": GOOD_PASSWORD})

        assert signed_up.status_code == 201, signed_up.content
        assert api_client.get(SESSIONS_URL).status_code == 401


class TestDuplicateEmails:
    @pytest.mark.parametrize("email", ["ana@example.com", "Ana@Example.com", "ANA@EXAMPLE.COM"])
    def test_an_email_already_registered_is_400_and_makes_no_second_user(self, api_client, email):
        DriverFactory(email="ana@example.com")

        response = sign_up(api_client, {"email": email, "password": GOOD_PASSWORD})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"email"}
        assert User.objects.filter(email__iexact="ana@example.com").count() == 1

    def test_an_account_stored_with_capitals_still_counts(self, api_client):
        # Accounts made before emails were lower-cased, or by an operator in the admin.
        User.objects.filter(pk=DriverFactory(email="x@example.com").pk).update(
            email="Ana@Example.com"
        )

        response = sign_up(api_client, {"email": "ana@example.com", "password": GOOD_PASSWORD})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"email"}
        assert User.objects.count() == 1

    def test_the_database_refuses_a_duplicate_the_check_missed(self):
        # Two sign-ups racing: both pass the serializer's check, the unique index decides.
        register_driver(email="ana@example.com", password=GOOD_PASSWORD)

        with pytest.raises(EmailAlreadyRegistered):
            register_driver(email="ANA@example.com", password=GOOD_PASSWORD)

        assert User.objects.count() == 1


class TestWeakPasswords:
    @pytest.mark.parametrize(
        ("email", "password"),
        [
            pytest.param("ana@example.com", "Tr4m!x", id="too-short"),
            pytest.param("ana@example.com", "password123", id="too-common"),
            pytest.param("ana@example.com", "qwertyuiop", id="too-common-keyboard"),
            pytest.param("ana@example.com", "4829175630", id="entirely-numeric"),
            pytest.param("jonathansmith@example.com", "jonathansmith", id="the-email-name"),
            pytest.param("jonathan.smith@example.com", "jonathan.smith", id="email-with-dot"),
            pytest.param("ana.popescu@example.com", "ana.popescu@example.com", id="the-email"),
            pytest.param("ana@example.com", "", id="empty"),
        ],
    )
    def test_a_weak_password_is_400_naming_it_and_makes_no_user(self, api_client, email, password):
        response = sign_up(api_client, {"email": email, "password": password})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"password"}
        assert not User.objects.exists()


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            pytest.param({}, {"email", "password"}, id="nothing"),
            pytest.param({"email": EMAIL}, {"password"}, id="no-password"),
            pytest.param({"password": GOOD_PASSWORD}, {"email"}, id="no-email"),
            pytest.param({"email": None, "password": GOOD_PASSWORD}, {"email"}, id="null-email"),
            pytest.param({"email": EMAIL, "password": None}, {"password"}, id="null-password"),
            pytest.param({"email": [EMAIL], "password": GOOD_PASSWORD}, {"email"}, id="email-list"),
            pytest.param({"email": EMAIL, "password": True}, {"password"}, id="password-true"),
            pytest.param(
                {"email": EMAIL, "password": {"a": 1}}, {"password"}, id="password-object"
            ),
        ],
    )
    def test_a_missing_or_mistyped_field_is_400_naming_it(self, api_client, body, fields):
        response = sign_up(api_client, body)

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == fields
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "email",
        [
            "not-an-email",
            "ana@",
            "@example.com",
            "ana@example",
            "ana example@example.com",
            "ana@@example.com",
            "",
            "   ",
            "a" * 250 + "@example.com",
        ],
    )
    def test_an_invalid_email_is_400_and_makes_no_user(self, api_client, email):
        response = sign_up(api_client, {"email": email, "password": GOOD_PASSWORD})

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == {"email"}
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "extra",
        [
            {"is_staff": True},
            {"is_superuser": True},
            {"is_staff": True, "is_superuser": True},
            {"is_active": False},
            {"id": 1},
            {"username": "ana"},
            {"groups": [1]},
            {"password2": GOOD_PASSWORD},
        ],
        ids=lambda extra: "+".join(extra),
    )
    def test_a_field_the_client_may_not_set_is_400_naming_it(self, api_client, extra):
        body = {"email": "ana@example.com", "password": GOOD_PASSWORD, **extra}

        response = sign_up(api_client, body)

        assert response.status_code == 400, response.content
        assert set(field_errors(response)) == set(extra)
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b'{"email": "ana@example.com", ', id="truncated"),
            pytest.param(b"{'email': 'ana@example.com'}", id="single-quotes"),
            pytest.param(b"email=ana@example.com", id="not-json"),
            pytest.param(b'{"email": "ana@example.com"}\xff', id="not-utf-8"),
            pytest.param(b'{"email": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", id="nested-5000-deep"),
        ],
    )
    def test_malformed_json_is_400(self, api_client, raw):
        response = api_client.post(SIGN_UP_URL, raw, content_type="application/json")

        assert response.status_code == 400, response.content
        assert error_codes(response) == ["parse_error"]
        assert error_detail(response)
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [[{"email": "ana@example.com", "password": GOOD_PASSWORD}], "ana@example.com", None],
        ids=["list", "string", "null"],
    )
    def test_a_body_that_is_not_an_object_is_400(self, api_client, body):
        response = sign_up(api_client, body)

        assert response.status_code == 400, response.content
        assert error_body(response)
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        ("content_type", "raw"),
        [
            ("text/plain", f'{{"email": "{EMAIL}", "password": "{GOOD_PASSWORD}"}}'),
            ("application/x-www-form-urlencoded", f"email={EMAIL}&password={GOOD_PASSWORD}"),
        ],
        ids=["text", "form"],
    )
    def test_a_body_that_is_not_json_is_415(self, api_client, content_type, raw):
        response = api_client.post(SIGN_UP_URL, raw, content_type=content_type)

        assert response.status_code == 415, response.content
        assert error_codes(response) == ["unsupported_media_type"]
        assert not User.objects.exists()


def test_a_code_whose_refresh_token_has_no_family_is_not_recorded():
    # Revoking "the family None" would revoke every token without one: refuse instead.
    access_token = AccessTokenFactory()
    RefreshToken.objects.create(
        user=access_token.user,
        application=access_token.application,
        token="refresh-without-family",
        access_token=access_token,
        token_family=None,
    )

    with pytest.raises(ValueError, match="no token family"):
        record_authorization_code_use(
            code="the-code", refresh_token="refresh-without-family", now=timezone.now()
        )

    assert not UsedAuthorizationCode.objects.exists()
