"""A driver's whole journey through the client openapi-python-client generates from the live
schema, as a mobile team would write it: sign up, sign in (authorization code + PKCE, as
the app's browser tab does), save a card (confirmed with Stripe as the phone does: localstripe
at ``STRIPE_API_BASE``), find a parking, start (a hold on the card), try the entrance, enter,
head out, try the exit, finalize, then read the history; and a second session cancelled.

Run by scripts/contract_test.sh with the generated ``parking_client`` on the path, after
``mypy --strict`` has checked it: answers are unions by status, narrowed with isinstance.

    python contract/journey.py http://127.0.0.1:8766
"""

import base64
import hashlib
import os
import re
import secrets
import sys
from html import unescape
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from parking_client import AuthenticatedClient, Client
from parking_client.api.accounts import sign_up
from parking_client.api.parking_sessions import (
    cancel_parking_session,
    confirm_entrance,
    finalize_parking_session,
    get_current_parking_session,
    get_parking_session,
    list_parking_sessions,
    request_exit,
    spend_entrance_try,
    spend_exit_try,
    start_parking_session,
)
from parking_client.api.payment_methods import add_payment_method, list_payment_methods
from parking_client.api.secured_parkings import list_secured_parkings
from parking_client.api.smart_keys import list_smart_keys
from parking_client.models import (
    Card,
    CardSetup,
    Driver,
    DriverSignUpRequest,
    Error404,
    Error404ErrorsItemCode,
    Error409,
    Error409ErrorsItemCode,
    PaginatedParkingSessionBodyList,
    PaginatedSecuredParkingList,
    ParkingSessionBody,
    SmartKey,
    StartParkingSessionRequest,
    StateEnum,
)
from parking_client.types import Response

CLIENT_ID = "parking-mobile-app"
REDIRECT_URI = "parkingapp://oauth/callback"
PASSWORD = "a-long-enough-Pass-phrase-42"

Parsed = TypeVar("Parsed")


def expect(response: Response[Any], status: int, kind: type[Parsed]) -> Parsed:
    """The body of an answer that must have ``status``, narrowed to ``kind``."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def sign_in(base_url: str, email: str, password: str) -> tuple[str, str]:
    """What the app does in its browser tab and then with /o/token/: an access token, and
    the ``iss`` the authorization response carried (RFC 9207)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "state": "journey",
            "scope": "driver",
        }
    )
    with httpx.Client(base_url=base_url) as browser:
        login = browser.get(f"/o/authorize/?{query}", follow_redirects=True)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert login.status_code == 200 and csrf, login.text
        signed_in = browser.post(
            str(login.url),
            data={"csrfmiddlewaretoken": csrf.group(1), "username": email, "password": password},
            headers={"Referer": str(login.url)},
        )
        assert signed_in.status_code == 302, signed_in.text
        authorized = browser.get(urljoin(str(login.url), unescape(signed_in.headers["Location"])))
        assert authorized.status_code == 302, authorized.text
        callback = authorized.headers["Location"]
        assert callback.startswith(REDIRECT_URI), callback
        answer = parse_qs(urlsplit(callback).query)
        assert answer["state"] == ["journey"], answer
        token = browser.post(
            "/o/token/",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        return str(token.json()["access_token"]), answer["iss"][0]


def check_metadata(base_url: str, issuer: str) -> None:
    """RFC 8414: the app discovers the endpoints, from the issuer it was told."""
    metadata = httpx.get(f"{base_url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == issuer, (metadata, issuer)
    assert metadata["authorization_endpoint"] == f"{issuer}/o/authorize/", metadata
    assert metadata["code_challenge_methods_supported"] == ["S256"], metadata


def save_card(client: AuthenticatedClient, stripe_base: str) -> None:
    """The app saves a card: the backend makes a SetupIntent, the phone confirms it with
    Stripe (the card number goes to Stripe only), and the card is listed, as the default."""
    setup = expect(add_payment_method.sync_detailed(client=client), 201, CardSetup)
    card = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}
    confirmed = httpx.post(
        f"{stripe_base}/v1/setup_intents/{setup.setup_intent_id}/confirm",
        data={
            "key": setup.publishable_key,
            "client_secret": setup.client_secret,
            "payment_method_data[type]": "card",
            **{f"payment_method_data[card][{name}]": value for name, value in card.items()},
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    cards = expect(list_payment_methods.sync_detailed(client=client), 200, list)
    assert [(c.last4, c.is_default) for c in cards if isinstance(c, Card)] == [("4242", True)]


def park(client: AuthenticatedClient) -> None:
    parkings = expect(
        list_secured_parkings.sync_detailed(client=client), 200, PaginatedSecuredParkingList
    )
    parking = next(p for p in parkings.results if p.name == "Secured P 1")
    assert parking.tariff is not None and parking.tariff.price_per_period == "5.00", parking

    request = StartParkingSessionRequest(secured_parking_id=parking.id)
    started = expect(
        start_parking_session.sync_detailed(
            client=client, body=request, idempotency_key="journey-1"
        ),
        201,
        ParkingSessionBody,
    )
    replayed = start_parking_session.sync_detailed(
        client=client, body=request, idempotency_key="journey-1"
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    session_id = started.parking_session.id
    assert started.parking_session.state == StateEnum.ENTERING and started.amount == "0.00"
    current = expect(
        get_current_parking_session.sync_detailed(client=client), 200, ParkingSessionBody
    )
    assert current.parking_session.id == session_id
    keys = expect(list_smart_keys.sync_detailed(client=client), 200, list)
    assert [key.id for key in keys if isinstance(key, SmartKey)] == [started.smart_key.id]

    tried = expect(
        spend_entrance_try.sync_detailed(session_id, client=client), 200, ParkingSessionBody
    )
    assert (
        tried.parking_session.entrance_remaining_tries
        == started.parking_session.entrance_remaining_tries - 1
    )
    entered = expect(
        confirm_entrance.sync_detailed(session_id, client=client), 200, ParkingSessionBody
    )
    assert entered.parking_session.state == StateEnum.ACTIVE
    refused = expect(confirm_entrance.sync_detailed(session_id, client=client), 409, Error409)
    assert refused.errors[0].code == Error409ErrorsItemCode.INVALID_SESSION_STATE
    assert refused.state == StateEnum.ACTIVE
    leaving = expect(request_exit.sync_detailed(session_id, client=client), 200, ParkingSessionBody)
    assert leaving.parking_session.state == StateEnum.EXITING
    expect(spend_exit_try.sync_detailed(session_id, client=client), 200, ParkingSessionBody)
    done = expect(
        finalize_parking_session.sync_detailed(session_id, client=client), 200, ParkingSessionBody
    )
    assert done.parking_session.state == StateEnum.FINISHED and done.parking_session.end_time
    assert done.amount == leaving.amount

    none = expect(get_current_parking_session.sync_detailed(client=client), 404, Error404)
    assert none.errors[0].code == Error404ErrorsItemCode.NOT_FOUND
    history = expect(
        list_parking_sessions.sync_detailed(client=client), 200, PaginatedParkingSessionBodyList
    )
    assert [body.parking_session.id for body in history.results] == [session_id]
    detail = expect(
        get_parking_session.sync_detailed(session_id, client=client), 200, ParkingSessionBody
    )
    assert detail.to_dict() == done.to_dict()

    second = expect(
        start_parking_session.sync_detailed(client=client, body=request), 201, ParkingSessionBody
    )
    cancelled = expect(
        cancel_parking_session.sync_detailed(second.parking_session.id, client=client),
        200,
        ParkingSessionBody,
    )
    assert cancelled.parking_session.state == StateEnum.CANCELLED and cancelled.amount == "0.00"


def main(base_url: str) -> None:
    email = f"journey-{secrets.token_hex(4)}@example.com"
    driver = expect(
        sign_up.sync_detailed(client=Client(base_url), body=DriverSignUpRequest(email, PASSWORD)),
        201,
        Driver,
    )
    assert driver.email == email
    token, issuer = sign_in(base_url, email, PASSWORD)
    check_metadata(base_url, issuer)
    client = AuthenticatedClient(base_url, token=token)
    save_card(client, os.environ["STRIPE_API_BASE"])
    park(client)
    print(
        f"journey: {email} signed up, signed in, saved a card, parked, paid and cancelled a "
        "second session"
    )


if __name__ == "__main__":
    main(sys.argv[1])
