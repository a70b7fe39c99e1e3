"""psycopg prepares the reads every API request makes on each connection (settings:
server_side_binding and prepare_threshold), unless DATABASE_PREPARED_STATEMENTS=0."""

import importlib
import re

import pytest
from django.conf import settings
from django.db import connection

import parking_api.settings as settings_module
from accounts.authentication import TOKEN_SQL
from parking.selectors import CURRENT_SESSION_SQL
from tests.api import CURRENT_URL
from tests.factories import ParkingSessionFactory

# Outside a test transaction, as on a server: a closed connection must keep the data.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOT_STATEMENTS = {TOKEN_SQL, CURRENT_SESSION_SQL}


def _as_sent(sql: str) -> str:
    """The SQL as psycopg sends it with server-side binding: ``%s`` becomes ``$1``, ``$2``…"""
    numbers = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _: f"${next(numbers)}", sql)


def _prepared_here() -> set[str]:
    """The statements prepared on this connection's PostgreSQL backend."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {statement for (statement,) in cursor.fetchall()}


@pytest.fixture
def fresh_connection():
    connection.close()  # a new connection: nothing prepared on it yet
    yield
    connection.close()  # the next test connects with the suite's settings again


def test_the_hot_reads_are_prepared_once_they_ran_prepare_threshold_times(
    driver_client, fresh_connection
):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold is not None
    ParkingSessionFactory(driver=driver_client.driver)
    hot = {_as_sent(sql) for sql in HOT_STATEMENTS}

    for _ in range(threshold):
        assert driver_client.get(CURRENT_URL).status_code == 200
    assert not hot & _prepared_here()

    assert driver_client.get(CURRENT_URL).status_code == 200
    assert hot <= _prepared_here()
    assert driver_client.get(CURRENT_URL).status_code == 200  # and executed as prepared


def test_database_prepared_statements_0_prepares_nothing(
    monkeypatch, driver_client, fresh_connection
):
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "0")
    importlib.reload(settings_module)
    options = settings_module.DATABASES["default"]["OPTIONS"]
    monkeypatch.undo()
    importlib.reload(settings_module)
    assert options["prepare_threshold"] is None  # psycopg's "never prepare"
    assert options["server_side_binding"] is True
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    ParkingSessionFactory(driver=driver_client.driver)
    connection.close()  # reconnect with these options

    for _ in range(20):
        assert driver_client.get(CURRENT_URL).status_code == 200

    assert _prepared_here() == set()
