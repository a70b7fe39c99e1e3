"""The production server on loopback ports: gunicorn with gunicorn.conf.py (which headers it
takes from the proxy, what it refuses itself, in HTML, before the app runs) and nginx in
front of it with deploy/nginx-bad-input.conf, which answers those same requests in the
API's JSON error format (README, "Bad input")."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tools import free_port, skip_unless_installed

ROOT = Path(__file__).resolve().parent.parent


def exchange(port: int, raw: bytes) -> bytes:
    """Sends ``raw`` on a new connection and reads one answer: its head and as many bytes
    as its Content-Length says (a server may keep the connection open a while after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, ended, body = answer.partition(b"\r\n\r\n")
            length = status_and_headers(head)[1].get("content-length") if ended else None
            if length is not None and len(body) >= int(length):
                break
    return answer


def request(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def wait_for(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if status_and_headers(exchange(port, request("/healthz")))[0] == 200:
                return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.2)


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
        wait_for(port, server)
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

MALFORMED = [
    pytest.param(b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, id="0xff-in-line"),
    pytest.param(b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, id="nul-in-line"),
    pytest.param(request("/api/car_driver/accounts", "Content-Length: abc"), 400, id="bad-length"),
    pytest.param(request(f"/api/car_driver/{LONG}"), 414, id="request-line-over-8190"),
    pytest.param(request("/healthz", f"X-Long: {LONG}"), 431, id="header-over-8190"),
    pytest.param(
        request("/healthz", "Content-Length: 1", "Content-Length: 2"), 400, id="two-lengths"
    ),
    pytest.param(request("/healthz", "X-A: a", " b"), 400, id="obsolete-folding"),
]


@pytest.mark.parametrize(("raw", "status"), MALFORMED)
def test_gunicorn_refuses_malformed_requests_before_the_app(gunicorn_port, raw, status):
    answer = exchange(gunicorn_port, raw)

    answered, headers = status_and_headers(answer)
    assert answered == status, answer
    # gunicorn's own page: the app (which tags every answer with X-Request-ID) never ran.
    assert headers["content-type"] == "text/html"
    assert "x-request-id" not in headers
    assert headers["connection"] == "close"


NGINX_CONF = """
daemon off;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream parking_app {{
        server 127.0.0.1:{upstream};
    }}
    server {{
        listen 127.0.0.1:{port};
        include {root}/deploy/nginx-bad-input.conf;
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx_port(gunicorn_port, tmp_path_factory):
    skip_unless_installed(
        shutil.which("nginx") is not None, "nginx on PATH", required_by="REQUIRE_NGINX"
    )
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            # As root nginx's workers would run as nobody, who cannot read the temp dirs.
            user="user root;" if os.geteuid() == 0 else "",
            tmp=tmp,
            port=port,
            root=ROOT,
            upstream=gunicorn_port,
        )
    )
    server = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_for(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


BETWEEN_THE_LIMITS = "a" * 5000  # over nginx's 4 KiB, under gunicorn's 8190 bytes

THROUGH_NGINX = [
    *(
        pytest.param(raw, 400 if status == 431 else status, id=case.id)
        for case in MALFORMED
        for raw, status in [case.values]
    ),
    pytest.param(request(f"/api/car_driver/{BETWEEN_THE_LIMITS}"), 414, id="request-line-over-4k"),
    pytest.param(request("/healthz", f"X-Long: {BETWEEN_THE_LIMITS}"), 400, id="header-over-4k"),
    pytest.param(b"GET /\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, id="control-in-line"),
    pytest.param(b"GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505, id="http-2.0-line"),
    pytest.param(request("/healthz", "Host: 127.0.0.1"), 400, id="two-hosts"),
    pytest.param(request("/admin/login/", "Content-Length: 2000000"), 413, id="body-over-1m"),
]


@pytest.mark.parametrize(("raw", "status"), THROUGH_NGINX)
def test_nginx_answers_them_in_the_api_error_format(nginx_port, raw, status):
    answer = exchange(nginx_port, raw)

    answered, headers = status_and_headers(answer)
    assert answered == status, answer
    assert headers["content-type"] == "application/json", answer
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["type"] in ("client_error", "server_error") and len(body["errors"]) == 1, body


def test_as_many_header_fields_as_nginx_takes_reach_the_app(nginx_port):
    answer = exchange(nginx_port, request("/healthz", *(f"X-{n}: a" for n in range(500))))

    assert status_and_headers(answer)[0] == 200, answer


def test_nginx_passes_the_apps_own_errors_through(nginx_port):
    answer = exchange(nginx_port, request("/api/car_driver/parking_sessions"))

    status, headers = status_and_headers(answer)
    assert status == 401, answer
    assert "x-request-id" in headers  # the app's answer, not nginx's
    assert headers["www-authenticate"].startswith("Bearer")
