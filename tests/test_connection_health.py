"""Connections live as long as the worker, and the per-request health check
(CONN_HEALTH_CHECKS, parking_api.postgresql) sends nothing while the connection is quiet and
replaces one the server closed before the request uses it."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from tests.api import CURRENT_URL
from tests.factories import ParkingSessionFactory

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)  # the connection is killed: the data must be committed
def test_a_connection_the_server_closed_is_replaced_before_the_request(driver_client):
    assert connection.health_check_enabled  # CONN_HEALTH_CHECKS, as in production
    session = ParkingSessionFactory(driver=driver_client.driver)
    assert driver_client.get(CURRENT_URL).status_code == 200
    killed = connection.connection
    _terminate(killed.info.backend_pid)

    # What every request starts with on a server (the test client skips it).
    close_old_connections()
    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200
    assert response.json()["parking_session"]["id"] == session.pk
    assert connection.connection is not killed


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as on a server
def test_the_health_check_of_a_quiet_connection_sends_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement before the check'")

    assert connection.is_usable()

    assert _last_statement_of(connection.connection.info.backend_pid) == (
        "SELECT 'the last statement before the check'"
    )


def _last_statement_of(backend_pid: int) -> str:
    with psycopg.connect(**connection.get_connection_params()) as other:
        found = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        return found.fetchone()[0]


def _terminate(backend_pid: int) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(**params) as other:  # closed on the way out
        other.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    # The server's goodbye reaches the socket of the killed connection shortly after.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and connection.is_usable():
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as on a server
def test_a_worker_keeps_its_connection_however_long_it_lives(monkeypatch):
    connection.ensure_connection()
    kept = connection.connection
    a_day_later = time.monotonic() + 24 * 3600
    monkeypatch.setattr(time, "monotonic", lambda: a_day_later)

    close_old_connections()  # what every request starts and ends with on a server

    assert connection.connection is kept
