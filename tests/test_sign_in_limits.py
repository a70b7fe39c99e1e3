"""Password and code guessing on the login forms (the drivers' and the admin's) and the token
endpoint: a limit per client IP and per account, in time windows, answered like every other
throttle (429, JSON, Retry-After)."""

from types import SimpleNamespace

import pytest

from core import throttling
from tests.api import error_codes
from tests.conftest import MID_WINDOW
from tests.factories import DriverFactory, SuperuserFactory

SIGN_IN_RATE = 10  # API_THROTTLE_SIGN_IN_RATE and API_THROTTLE_SIGN_IN_ACCOUNT_RATE, per minute
PASSWORD_FORMS = ["/admin/login/", "/accounts/login/"]

pytestmark = pytest.mark.django_db


def wrong_password(client, path, email, ip="203.0.113.7", **extra):
    return client.post(path, {"username": email, "password": "wrong"}, REMOTE_ADDR=ip, **extra)


def test_wrong_superuser_passwords_on_the_admin_login_are_limited(client):
    superuser = SuperuserFactory()

    statuses = [
        wrong_password(client, "/admin/login/", superuser.email).status_code for _ in range(25)
    ]

    assert statuses == [200] * SIGN_IN_RATE + [429] * (25 - SIGN_IN_RATE)
    response = wrong_password(client, "/admin/login/", superuser.email)
    assert error_codes(response) == ["throttled"]
    assert int(response["Retry-After"]) == 30  # the rest of the current window


@pytest.mark.parametrize("path", PASSWORD_FORMS)
def test_guesses_from_many_ips_at_one_account_are_limited(client, path):
    user = SuperuserFactory()

    statuses = [
        wrong_password(client, path, user.email, ip=f"203.0.113.{n}").status_code
        for n in range(SIGN_IN_RATE + 1)
    ]

    assert 429 not in statuses[:SIGN_IN_RATE] and statuses[SIGN_IN_RATE] == 429
    # Another account from a fresh address is not held up; the account in any spelling is.
    other = DriverFactory()
    assert wrong_password(client, path, other.email, ip="198.51.100.1").status_code != 429
    assert wrong_password(client, path, user.email.upper(), ip="198.51.100.2").status_code == 429


@pytest.mark.parametrize("path", PASSWORD_FORMS)
def test_the_limit_ends_with_its_window(client, monkeypatch, path):
    user = SuperuserFactory()
    for _ in range(SIGN_IN_RATE + 1):
        wrong_password(client, path, user.email)
    assert wrong_password(client, path, user.email).status_code == 429

    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: MID_WINDOW + 60))

    response = client.post(
        path,
        {"username": user.email, "password": "correct-horse-battery"},
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302  # signed in


@pytest.mark.parametrize("path", [*PASSWORD_FORMS, "/o/token/"])
def test_a_script_name_prefix_does_not_escape_the_limit(client, path):
    # What gunicorn hands the app for "POST /x<path>" with "SCRIPT_NAME: /x": PATH_INFO
    # without the prefix, request.path with it.
    statuses = [
        client.post(path, {"x": "y"}, REMOTE_ADDR="203.0.113.7", SCRIPT_NAME="/x").status_code
        for _ in range(SIGN_IN_RATE + 1)
    ]

    assert 429 not in statuses[:SIGN_IN_RATE] and statuses[SIGN_IN_RATE] == 429
