"""Online parkings: the backend opens barriers through the parking's gateway over HTTP.

A real HTTP server on loopback stands in for the gateway; it can confirm, answer slowly,
fail, or not be there at all."""

import json
import ssl
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parking.models import ParkingSession, State
from smart_keys import gateway as gateway_client
from smart_keys.models import AccessEvent, AccessLogEntry, AccessResult, Direction
from tests.api import (
    DriverClient,
    error_body,
    error_code,
    field_errors,
    session_action,
    session_url,
)
from tests.factories import BarrierGatewayFactory, ParkingSessionFactory, SecuredParkingFactory
from tests.tools import free_port

READ_TIMEOUT = 0.3
APP_KEY = "3c9e1f0a-5b7d-4e2a-9c81-6d4f2b0e7a13"

pytestmark = pytest.mark.django_db


class FakeGateway(ThreadingHTTPServer):
    """Answers open requests as ``behaviour`` says; opens once per request id."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.behaviour = "confirm"
        self.redirect_to = ""
        self.requests: list[dict] = []
        self.opened: Counter = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/open"


class GatewayHandler(BaseHTTPRequestHandler):
    server: FakeGateway

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request_id = self.headers["Idempotency-Key"]
        with self.server.lock:
            seen_before = self.server.opened[request_id] > 0
            self.server.requests.append({"headers": dict(self.headers), "body": body})
            behaviour = self.server.behaviour
            if behaviour in ("confirm", "slow", "slow_first") and not seen_before:
                self.server.opened[request_id] += 1
        if behaviour == "slow" or (behaviour == "slow_first" and not seen_before):
            time.sleep(READ_TIMEOUT * 3)
        if behaviour == "redirect":
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, answer = {
            "error": (500, {"detail": "motor fault"}),
            "refuse": (200, {"opened": False, "reason": "barrier jammed"}),
            "not_json": (200, None),
        }.get(behaviour, (200, {"opened": True}))
        payload = b"<html>ok</html>" if answer is None else json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the backend gave up waiting; that is the point of the slow cases

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_gateway():
    server = FakeGateway()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def another_gateway():
    server = FakeGateway()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def driver_client(driver) -> DriverClient:
    # 502 and 504 are reported like server errors (got_request_exception), which the test
    # client would re-raise instead of returning the answer the app gets.
    return DriverClient(driver, raise_request_exception=False)


@pytest.fixture(autouse=True)
def fast_gateway_settings(settings, monkeypatch):
    settings.BARRIER_GATEWAY_CONNECT_TIMEOUT = READ_TIMEOUT
    settings.BARRIER_GATEWAY_READ_TIMEOUT = READ_TIMEOUT
    settings.BARRIER_GATEWAY_ATTEMPTS = 2
    monkeypatch.setattr(gateway_client, "RETRY_PAUSE_SECONDS", 0)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/open"


def online_session(driver, url: str, state=State.ENTERING, **kwargs) -> ParkingSession:
    parking = SecuredParkingFactory(is_online=True, access_points=2, entrance_tries=3)
    BarrierGatewayFactory(secured_parking=parking, url=url)
    return ParkingSessionFactory(driver=driver, secured_parking=parking, state=state, **kwargs)


def open_barrier(client, session, *, idempotency_key: str | None = None, **body):
    headers = {} if idempotency_key is None else {"HTTP_IDEMPOTENCY_KEY": idempotency_key}
    return client.post(
        session_url(session.pk, "open_barrier"), body or None, format="json", **headers
    )


def tries_left(session) -> tuple[int, int]:
    session.refresh_from_db()
    return session.entrance_remaining_tries, session.exit_remaining_tries


def last_log(session) -> AccessLogEntry:
    return AccessLogEntry.objects.filter(parking_session=session).latest("id")


class TestTheGatewayConfirms:
    def test_the_barrier_opens_and_the_entrance_try_is_spent(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 200, response.json()
        assert response.json()["parking_session"]["entrance_remaining_tries"] == 2
        assert tries_left(session) == (2, 3)
        [sent] = fake_gateway.requests
        entrance_macs = sorted(
            session.smart_key.access_points.values_list("mac_address", flat=True)
        )
        assert sent["body"]["direction"] == "entrance"
        assert sent["body"]["access_points"] == entrance_macs
        assert sent["body"]["parking_session_id"] == session.pk
        assert sent["body"]["request_id"] == sent["headers"]["Idempotency-Key"]
        assert sent["headers"]["Authorization"] == "Bearer gateway-test-credential"
        entry = last_log(session)
        assert (entry.event, entry.result, entry.direction) == (
            AccessEvent.OPEN_REQUEST,
            AccessResult.OPENED,
            Direction.ENTRANCE,
        )

    def test_the_app_may_name_the_one_barrier_to_open(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)
        barrier = session.smart_key.access_points.order_by("id").last()

        response = open_barrier(driver_client, session, access_point_id=barrier.pk)

        assert response.status_code == 200, response.json()
        assert fake_gateway.requests[0]["body"]["access_points"] == [barrier.mac_address]
        assert last_log(session).access_point == barrier

    def test_an_exiting_session_opens_the_exit_and_spends_an_exit_try(
        self, driver_client, fake_gateway
    ):
        session = online_session(driver_client.driver, fake_gateway.url, state=State.ACTIVE)
        assert session_action(driver_client, session.pk, "exit").status_code == 200

        response = open_barrier(driver_client, session)

        assert response.status_code == 200, response.json()
        assert tries_left(session) == (3, 2)
        exit_macs = list(
            session.secured_parking.access_points.filter(direction=Direction.EXIT).values_list(
                "mac_address", flat=True
            )
        )
        assert fake_gateway.requests[0]["body"]["direction"] == "exit"
        assert fake_gateway.requests[0]["body"]["access_points"] == exit_macs

    def test_a_retry_after_a_lost_answer_carries_the_same_request_id_and_opens_once(
        self, driver_client, fake_gateway
    ):
        fake_gateway.behaviour = "slow_first"
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 200, response.json()
        first, retry = fake_gateway.requests
        assert first["headers"]["Idempotency-Key"] == retry["headers"]["Idempotency-Key"]
        assert list(fake_gateway.opened.values()) == [1]
        assert tries_left(session) == (2, 3)


class TestAppRetries:
    """The app resends ``open_barrier`` with the same ``Idempotency-Key`` when it got no answer
    or a failure; the gateway must see the same request id and open once."""

    def test_a_retry_after_a_lost_answer_sends_the_gateway_the_same_request_id(
        self, driver_client, fake_gateway
    ):
        fake_gateway.behaviour = "slow"  # opens, but every answer comes too late
        session = online_session(driver_client.driver, fake_gateway.url)
        assert open_barrier(driver_client, session, idempotency_key=APP_KEY).status_code == 504
        assert tries_left(session) == (3, 3)
        fake_gateway.behaviour = "confirm"

        retry = open_barrier(driver_client, session, idempotency_key=APP_KEY)

        assert retry.status_code == 200, retry.json()
        request_ids = {sent["headers"]["Idempotency-Key"] for sent in fake_gateway.requests}
        assert len(fake_gateway.requests) == 3  # two timed out, one answered
        assert len(request_ids) == 1
        assert list(fake_gateway.opened.values()) == [1]
        assert tries_left(session) == (2, 3)

    def test_a_retry_after_the_answer_replays_it_without_calling_the_gateway(
        self, driver_client, fake_gateway
    ):
        session = online_session(driver_client.driver, fake_gateway.url)
        first = open_barrier(driver_client, session, idempotency_key=APP_KEY)
        assert first.status_code == 200, first.json()

        retry = open_barrier(driver_client, session, idempotency_key=APP_KEY)

        assert retry.status_code == 200, retry.json()
        assert retry.json() == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert len(fake_gateway.requests) == 1
        assert tries_left(session) == (2, 3)

    def test_another_key_is_another_opening(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)

        for key in ("first-key", "second-key"):
            assert open_barrier(driver_client, session, idempotency_key=key).status_code == 200

        first, second = fake_gateway.requests
        assert first["headers"]["Idempotency-Key"] != second["headers"]["Idempotency-Key"]
        assert tries_left(session) == (1, 3)

    def test_the_same_key_for_another_barrier_is_422(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)
        first_barrier, second_barrier = session.smart_key.access_points.order_by("id")
        opened = open_barrier(
            driver_client, session, idempotency_key=APP_KEY, access_point_id=first_barrier.pk
        )
        assert opened.status_code == 200, opened.json()

        response = open_barrier(
            driver_client, session, idempotency_key=APP_KEY, access_point_id=second_barrier.pk
        )

        assert response.status_code == 422
        assert error_code(response) == "idempotency_key_reused"
        assert len(fake_gateway.requests) == 1

    def test_an_invalid_key_is_400_and_the_gateway_is_not_called(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session, idempotency_key="has space")

        assert response.status_code == 400
        assert set(field_errors(response)) == {"Idempotency-Key"}
        assert fake_gateway.requests == []
        assert tries_left(session) == (3, 3)


class TestTheGatewayFails:
    def test_a_slow_gateway_is_a_504_and_the_try_is_not_lost(self, driver_client, fake_gateway):
        fake_gateway.behaviour = "slow"
        session = online_session(driver_client.driver, fake_gateway.url)

        started = time.monotonic()
        response = open_barrier(driver_client, session)

        assert response.status_code == 504
        assert error_code(response) == "barrier_gateway_timeout"
        assert error_body(response)["type"] == "server_error"
        assert tries_left(session) == (3, 3)
        assert len(fake_gateway.requests) == 2  # retried once, then gave up
        assert time.monotonic() - started < 2 * READ_TIMEOUT + 1
        assert last_log(session).result == AccessResult.GATEWAY_TIMEOUT

    def test_a_gateway_that_is_down_is_a_502_and_the_try_is_not_lost(self, driver_client):
        session = online_session(driver_client.driver, closed_port_url())

        response = open_barrier(driver_client, session)

        assert response.status_code == 502
        assert error_code(response) == "barrier_gateway_unreachable"
        assert response.json()["attempts"] == 2
        assert tries_left(session) == (3, 3)
        assert last_log(session).result == AccessResult.GATEWAY_UNREACHABLE

    @pytest.mark.parametrize("behaviour", ["error", "refuse", "not_json"])
    def test_an_error_answer_is_a_502_not_retried_and_the_try_is_not_lost(
        self, driver_client, fake_gateway, behaviour
    ):
        fake_gateway.behaviour = behaviour
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 502
        assert error_code(response) == "barrier_gateway_error"
        assert "try was not spent" in error_body(response)["errors"][0]["detail"]
        assert len(fake_gateway.requests) == 1
        assert tries_left(session) == (3, 3)
        assert last_log(session).result == AccessResult.GATEWAY_ERROR

    def test_gateway_failures_never_spend_the_last_try(self, driver_client):
        session = online_session(
            driver_client.driver, closed_port_url(), entrance_remaining_tries=1
        )

        for _ in range(3):
            assert open_barrier(driver_client, session).status_code == 502

        assert tries_left(session) == (1, 3)


class TestRefusals:
    def test_a_parking_without_a_gateway_is_409(self, driver_client):
        session = ParkingSessionFactory(driver=driver_client.driver, state=State.ENTERING)

        response = open_barrier(driver_client, session)

        assert response.status_code == 409
        assert error_code(response) == "barrier_gateway_not_configured"
        assert tries_left(session) == (3, 3)
        assert last_log(session).result == AccessResult.REFUSED

    def test_a_disabled_gateway_is_409(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)
        session.secured_parking.barrier_gateway.__class__.objects.update(is_enabled=False)

        response = open_barrier(driver_client, session)

        assert response.status_code == 409
        assert error_code(response) == "barrier_gateway_not_configured"
        assert fake_gateway.requests == []
        assert tries_left(session) == (3, 3)

    @pytest.mark.parametrize("state", [State.ACTIVE, State.FINISHED, State.CANCELLED])
    def test_a_session_not_at_a_barrier_is_409_and_the_gateway_is_not_called(
        self, driver_client, fake_gateway, state
    ):
        session = online_session(driver_client.driver, fake_gateway.url, state=state)

        response = open_barrier(driver_client, session)

        assert response.status_code == 409
        assert error_code(response) == "invalid_session_state"
        assert fake_gateway.requests == []

    def test_no_tries_left_is_409(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url, entrance_remaining_tries=0)

        response = open_barrier(driver_client, session)

        assert response.status_code == 409
        assert error_code(response) == "no_tries_left"
        assert fake_gateway.requests == []

    def test_a_barrier_the_key_does_not_open_is_400(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)
        exit_barrier = session.secured_parking.access_points.get(direction=Direction.EXIT)

        response = open_barrier(driver_client, session, access_point_id=exit_barrier.pk)

        assert response.status_code == 400
        assert list(field_errors(response)) == ["access_point_id"]
        assert tries_left(session) == (3, 3)

    def test_unknown_fields_are_400(self, driver_client, fake_gateway):
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session, direction="exit")

        assert response.status_code == 400
        assert set(field_errors(response)) == {"direction"}
        assert fake_gateway.requests == []
        assert tries_left(session) == (3, 3)

    def test_another_drivers_session_is_404(self, driver_client, make_driver_client, fake_gateway):
        session = online_session(make_driver_client().driver, fake_gateway.url)

        assert open_barrier(driver_client, session).status_code == 404
        assert fake_gateway.requests == []
        assert tries_left(session) == (3, 3)


class TestTheCredentialFollowsTheURL:
    def test_after_the_url_changed_the_old_credential_is_not_sent_to_the_new_host(
        self, driver_client, fake_gateway
    ):
        session = online_session(driver_client.driver, closed_port_url())
        gateway = session.secured_parking.barrier_gateway
        gateway.url = fake_gateway.url  # e.g. in a shell, past the admin's form
        gateway.save()

        open_barrier(driver_client, session)

        [sent] = fake_gateway.requests
        assert "Authorization" not in sent["headers"]


class TestGatewayAddressRules:
    """At call time the gateway's host is resolved again and every address checked; a
    refused URL fails like a gateway that cannot be reached. The stored URLs below skip the
    save-time check, as a name that resolves elsewhere since it was saved does."""

    def gateway_refused(self, driver_client, url: str, fake_gateway) -> None:
        session = online_session(driver_client.driver, url)

        started = time.monotonic()
        response = open_barrier(driver_client, session)

        assert response.status_code == 502
        assert error_code(response) == "barrier_gateway_unreachable"
        assert "try was not spent" in error_body(response)["errors"][0]["detail"]
        assert fake_gateway.requests == []
        assert tries_left(session) == (3, 3)
        assert last_log(session).result == AccessResult.GATEWAY_UNREACHABLE
        assert time.monotonic() - started < 1  # refused before connecting, not timed out

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
    def test_a_gateway_on_loopback_is_refused(self, driver_client, fake_gateway, settings, host):
        settings.BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS = False
        url = fake_gateway.url.replace("127.0.0.1", host)

        self.gateway_refused(driver_client, url, fake_gateway)

    @pytest.mark.parametrize(
        "url",
        [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/open",
            "http://192.168.0.10/open",
            "http://[fe80::1]/open",
            "http://224.0.0.1/open",
            "http://240.0.0.1/open",
            "http://0.0.0.0/open",
        ],
    )
    def test_a_gateway_on_a_private_link_local_multicast_or_reserved_address_is_refused(
        self, driver_client, fake_gateway, settings, url
    ):
        settings.BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS = False

        self.gateway_refused(driver_client, url, fake_gateway)

    def test_plain_http_is_refused(self, driver_client, fake_gateway, settings):
        settings.BARRIER_GATEWAY_ALLOW_HTTP = False

        self.gateway_refused(driver_client, fake_gateway.url, fake_gateway)

    def test_the_request_goes_to_the_address_checked_under_the_gateways_host_name(
        self, driver_client, fake_gateway
    ):
        url = fake_gateway.url.replace("127.0.0.1", "localhost")
        session = online_session(driver_client.driver, url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 200, response.json()
        [sent] = fake_gateway.requests
        assert sent["headers"]["Host"] == f"localhost:{fake_gateway.server_address[1]}"

    def test_a_redirect_is_not_followed(self, driver_client, fake_gateway, another_gateway):
        fake_gateway.behaviour = "redirect"
        fake_gateway.redirect_to = another_gateway.url
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 502
        assert error_code(response) == "barrier_gateway_error"
        assert len(fake_gateway.requests) == 1
        assert another_gateway.requests == []
        assert tries_left(session) == (3, 3)

    def test_no_proxy_from_the_environment_stands_between(
        self, driver_client, fake_gateway, monkeypatch
    ):
        monkeypatch.setenv("HTTP_PROXY", closed_port_url())
        monkeypatch.setenv("http_proxy", closed_port_url())
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        session = online_session(driver_client.driver, fake_gateway.url)

        response = open_barrier(driver_client, session)

        assert response.status_code == 200, response.json()
        assert len(fake_gateway.requests) == 1


def self_signed_certificate(directory, host: str) -> tuple[str, str]:
    """A certificate for ``host`` (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_gateway(tmp_path):
    """The fake gateway over TLS with a certificate for gateway.test, noting the SNI names."""
    cert, key = self_signed_certificate(tmp_path, "gateway.test")
    server = FakeGateway()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.server_names = []
    context.sni_callback = lambda _socket, name, _context: server.server_names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.ca_bundle = cert
    yield server
    server.shutdown()
    server.server_close()


class TestTheCheckedAddressOverTLS:
    """The request goes to the checked address, while TLS names and verifies the gateway's
    host: the certificate must be for the name in the URL, not for the address."""

    def post(self, tls_gateway, host: str):
        port = tls_gateway.server_address[1]
        with requests.Session() as session:
            session.mount("https://", gateway_client.PinnedHostAdapter(host))
            return session.post(
                f"https://127.0.0.1:{port}/open",
                json={},
                headers={"Host": f"{host}:{port}", "Idempotency-Key": "tls-test"},
                verify=tls_gateway.ca_bundle,
                timeout=READ_TIMEOUT * 3,
            )

    def test_the_gateways_name_is_sent_and_its_certificate_accepted(self, tls_gateway):
        response = self.post(tls_gateway, "gateway.test")

        assert response.status_code == 200
        assert tls_gateway.server_names == ["gateway.test"]
        assert tls_gateway.requests[0]["headers"]["Host"].startswith("gateway.test:")

    def test_a_certificate_for_another_name_is_refused(self, tls_gateway):
        with pytest.raises(requests.exceptions.SSLError):
            self.post(tls_gateway, "elsewhere.test")

        assert tls_gateway.requests == []
