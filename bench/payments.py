"""The write path with card payments: localstripe on loopback, a saved card per driver, a
job worker, and the parkings charging by card.

Cards are saved the way the app saves them: ``POST payment_methods`` on the served project
(a Stripe Customer and a SetupIntent), the SetupIntent confirmed at localstripe with a test
card and the publishable key (what Stripe's mobile SDK does), then ``GET payment_methods``,
which records the card. Each start then places a hold at localstripe inside the request,
and the worker releases or captures it after exit.
"""

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.layout import raw_token

SECRET_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"
TEST_CARD = "4242424242424242"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalStripe:
    """scripts/localstripe_server.py in its own process group, its store in memory."""

    def __init__(self, app_dir: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "scripts/localstripe_server.py", str(self.port)],
                cwd=app_dir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not _answers(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"localstripe did not start; see {log_path}")
            time.sleep(0.1)

    def env(self) -> dict[str, str]:
        """What the project needs to talk to it (production settings want a real key)."""
        return {
            "STRIPE_API_BASE": self.url,
            "STRIPE_API_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _request(
    port: int, method: str, path: str, *, headers: dict, body: bytes = b""
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def save_card(app_port: int, stripe_port: int, driver_id: int) -> bool:
    """The app's three steps for one driver; whether the card is listed afterwards."""
    api = {"Authorization": f"Bearer {raw_token(driver_id)}", "Host": "127.0.0.1"}
    status, data = _request(app_port, "POST", "/api/car_driver/payment_methods", headers=api)
    if status != 201:
        return False
    secret = json.loads(data)["client_secret"]
    form = {
        "key": PUBLISHABLE_KEY,
        "client_secret": secret,
        "payment_method_data[type]": "card",
        "payment_method_data[card][number]": TEST_CARD,
        "payment_method_data[card][exp_month]": "12",
        "payment_method_data[card][exp_year]": "2034",
        "payment_method_data[card][cvc]": "123",
    }
    status, _ = _request(
        stripe_port,
        "POST",
        f"/v1/setup_intents/{secret.split('_secret_')[0]}/confirm",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(form).encode(),
    )
    if status != 200:
        return False
    status, data = _request(app_port, "GET", "/api/car_driver/payment_methods", headers=api)
    return status == 200 and bool(json.loads(data))


def save_cards(app_port: int, stripe_port: int, driver_ids: list[int], concurrency: int) -> int:
    """A card for each driver, ``concurrency`` at a time; how many were saved."""
    with ThreadPoolExecutor(concurrency) as pool:
        saved = pool.map(lambda d: save_card(app_port, stripe_port, d), driver_ids)
        return sum(saved)


class Worker:
    """``manage.py procrastinate worker`` for the served checkout, in its own group."""

    def __init__(self, app_dir: Path, env: dict, log_path: Path) -> None:
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "procrastinate", "worker"],
                cwd=app_dir,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
