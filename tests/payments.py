"""localstripe for tests: a real server process on a free loopback port (scripts/
localstripe_server.py), the app's side of Stripe (confirming a SetupIntent with a test card,
completing 3-D Secure, as Stripe's mobile SDK would with the publishable key), and reading
what Stripe holds."""

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from parking.models import ParkingSession
from payments.demo import CARD_OK, confirm_card_setup
from payments.models import Payment, PaymentState
from tests.api import API, act, json_body, start_session
from tests.jobs import wait_until
from tests.tools import free_port

ROOT = Path(__file__).resolve().parent.parent
PAYMENT_METHODS_URL = f"{API}/payment_methods"
SECRET_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"

CARD_3DS = "4000002500003155"
# Refused when saved (the SetupIntent), as at Stripe.
CARD_DECLINED = "4000000000000002"
# Saved fine, refused when charged: a start's hold is declined.
CARD_DECLINED_ON_CHARGE = "4000000000000341"


class LocalStripe:
    def __init__(self, store: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store = store
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [sys.executable, "scripts/localstripe_server.py", str(self.port), str(self.store)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not _answers(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError("localstripe did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (its store is kept on disk: start() brings it back as it was)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Nothing to lose: localstripe writes its store on each change, not on exit.
                self.process.kill()
                self.process.wait(timeout=10)

    def get(self, path: str, **params) -> dict:
        response = requests.get(
            f"{self.url}{path}", params=params, auth=(SECRET_KEY, ""), timeout=5
        )
        response.raise_for_status()
        return response.json()

    def exists(self, path: str) -> bool:
        response = requests.get(f"{self.url}{path}", auth=(SECRET_KEY, ""), timeout=5)
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def payment_intent(self, reference: str) -> dict:
        return self.get(f"/v1/payment_intents/{reference}")

    def payment_intents(self) -> list[dict]:
        return self.get("/v1/payment_intents", limit=100)["data"]

    def cancel_payment_intent(self, reference: str) -> None:
        """A hold gone at Stripe (cancelled there, or expired)."""
        response = requests.post(
            f"{self.url}/v1/payment_intents/{reference}/cancel", auth=(SECRET_KEY, ""), timeout=5
        )
        response.raise_for_status()

    def latest_charge(self, intent_reference: str) -> dict:
        charge = self.payment_intent(intent_reference)["latest_charge"]
        # localstripe expands it whether asked or not.
        return charge if isinstance(charge, dict) else self.get(f"/v1/charges/{charge}")

    def confirm_setup(self, client_secret: str, number: str) -> requests.Response:
        """What the app does with a SetupIntent's secret: the card goes to Stripe only."""
        return confirm_card_setup(
            api_base=self.url,
            publishable_key=PUBLISHABLE_KEY,
            client_secret=client_secret,
            number=number,
        )

    def authenticate(self, client_secret: str, *, success: bool = True) -> None:
        """The driver passes (or fails) 3-D Secure for a PaymentIntent in the app."""
        intent_id = client_secret.split("_secret_")[0]
        response = requests.post(
            f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
            data={
                "key": PUBLISHABLE_KEY,
                "client_secret": client_secret,
                "success": "true" if success else "false",
            },
            timeout=5,
        )
        response.raise_for_status()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def _shared_localstripe(tmp_path_factory) -> Iterator[LocalStripe]:
    server = LocalStripe(tmp_path_factory.mktemp("localstripe") / "store.pickle")
    yield server
    server.stop()


@pytest.fixture
def localstripe(_shared_localstripe, settings) -> LocalStripe:
    """The suite's localstripe, which the app under test talks to."""
    settings.STRIPE_API_BASE = _shared_localstripe.url
    return _shared_localstripe


@pytest.fixture
def own_localstripe(settings, tmp_path) -> Iterator[LocalStripe]:
    """A localstripe of the test's own, to stop and start."""
    server = LocalStripe(tmp_path / "store.pickle")
    settings.STRIPE_API_BASE = server.url
    yield server
    server.stop()


def save_card(client, stripe: LocalStripe, number: str = CARD_OK) -> dict:
    """The app saves a card: a setup from the API, confirmed with Stripe; the card as listed."""
    setup = json_body(client.post(PAYMENT_METHODS_URL), 201)
    response = stripe.confirm_setup(setup["client_secret"], number)
    assert response.ok, response.text
    cards = json_body(client.get(PAYMENT_METHODS_URL), 200)
    return next(card for card in cards if card["last4"] == number[-4:])


def refund_at_stripe(stripe: LocalStripe, intent_reference: str, amount: int) -> dict:
    """A refund made in Stripe's dashboard (no key or metadata of ours), ``amount`` in bani."""
    response = requests.post(
        f"{stripe.url}/v1/refunds",
        data={"payment_intent": intent_reference, "amount": str(amount)},
        auth=(SECRET_KEY, ""),
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


def parked_for(client, parking, duration: timedelta) -> ParkingSession:
    """A started, entered session whose stay began ``duration`` ago."""
    body = json_body(start_session(client, parking), 201)
    session_id = body["parking_session"]["id"]
    act(client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(start_time=timezone.now() - duration)
    return ParkingSession.objects.get(pk=session_id)


def wait_for_state(payment_id: int, state: PaymentState, timeout: float = 40) -> Payment:
    """The payment once a job worker has brought it to ``state``."""
    wait_until(
        lambda: Payment.objects.get(pk=payment_id).state == state,
        what=f"payment {payment_id} {state}",
        timeout=timeout,
    )
    return Payment.objects.get(pk=payment_id)
