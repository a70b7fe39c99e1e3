"""The production server as configured in gunicorn.conf.py, on a loopback port: which
headers it takes from the proxy, and the requests it refuses itself, before the app sees
them (README, "Bad input": the front proxy keeps those from reaching clients)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exchange(port: int, raw: bytes) -> bytes:
    """Sends ``raw`` on a new connection and reads the answer until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def request(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def status_and_headers(answer: bytes) -> tuple[int, dict[str, str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {name.lower(): value for name, value in fields.items()}


@pytest.fixture(scope="module")
def gunicorn_port(tmp_path_factory):
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "REDIS_URL"},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "gunicorn-test-secret-key-not-for-production-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # The requests here need no database; a file nobody migrated proves it.
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('gunicorn') / 'unused.sqlite3'}",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "parking_api.wsgi",
        *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if status_and_headers(exchange(port, request("/healthz")))[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_script_name_header_from_the_trusted_proxy_address_is_dropped(gunicorn_port):
    # The test connects from 127.0.0.1, FORWARDED_ALLOW_IPS's default.
    answer = exchange(gunicorn_port, request("/accounts/signed-in/", "SCRIPT_NAME: /x"))

    status, headers = status_and_headers(answer)
    assert status == 302, answer
    assert headers["location"] == "/accounts/login/?next=/accounts/signed-in/"


LONG = "a" * 9000


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, id="0xff-in-line"),
        pytest.param(b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, id="nul-in-line"),
        pytest.param(
            request("/api/car_driver/accounts", "Content-Length: abc"), 400, id="bad-length"
        ),
        pytest.param(request(f"/api/car_driver/{LONG}"), 414, id="request-line-over-8190"),
        pytest.param(request("/healthz", f"X-Long: {LONG}"), 431, id="header-over-8190"),
    ],
)
def test_gunicorn_refuses_malformed_requests_before_the_app(gunicorn_port, raw, status):
    answer = exchange(gunicorn_port, raw)

    answered, headers = status_and_headers(answer)
    assert answered == status, answer
    # gunicorn's own page: the app (which tags every answer with X-Request-ID) never ran.
    assert headers["content-type"] == "text/html"
    assert "x-request-id" not in headers
    assert headers["connection"] == "close"
