"""The hot reads as server-side prepared statements on PostgreSQL (core.prepared_queries)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from core.prepared_queries import PreparedQuery
from parking.models import ParkingSession
from parking.selectors import _current_session, _current_session_query, current_session_for
from tests.api import CURRENT_URL
from tests.factories import ParkingSessionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split()[0] for query in context.captured_queries]


@pytest.mark.django_db(transaction=True)  # closing the connection must keep the data
def test_each_connection_prepares_once_then_only_executes(driver_client):
    ParkingSessionFactory(driver=driver_client.driver)
    connection.close()  # a new connection: nothing prepared on it yet

    with CaptureQueriesContext(connection) as first:
        assert driver_client.get(CURRENT_URL).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert driver_client.get(CURRENT_URL).status_code == 200

    assert _statements(first) == ["PREPARE", "EXECUTE", "PREPARE", "EXECUTE"]
    assert _statements(second) == ["EXECUTE", "EXECUTE"]


@pytest.mark.django_db(transaction=True)
def test_a_reconnect_prepares_again(driver_client):
    session = ParkingSessionFactory(driver=driver_client.driver)
    assert driver_client.get(CURRENT_URL).status_code == 200

    connection.close()
    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200
    assert response.json()["parking_session"]["id"] == session.pk


@pytest.mark.django_db(transaction=True)  # autocommit, as the API reads run
def test_a_statement_the_server_forgot_is_prepared_again(driver_client):
    session = ParkingSessionFactory(driver=driver_client.driver)
    assert driver_client.get(CURRENT_URL).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # e.g. a pooler's DISCARD ALL

    response = driver_client.get(CURRENT_URL)

    assert response.status_code == 200
    assert response.json()["parking_session"]["id"] == session.pk


def test_constants_are_written_into_the_statement():
    # With the states as literals, the generic plan PostgreSQL caches after a few
    # executions can still prove that the partial one_open_session_per_driver index
    # applies; only the driver and the entering deadline are parameters.
    session = ParkingSessionFactory()
    assert current_session_for(session.driver_id, now=datetime.now(UTC)).pk == session.pk
    statement = _current_session._compiled["default"].statement

    assert statement.prepare.startswith(f"PREPARE {statement.name} AS SELECT ")
    assert """IN ('entering', 'active', 'exiting')""" in statement.prepare
    assert '"driver_id" = $1' in statement.prepare
    assert '"start_time" <= $2' in statement.prepare
    assert statement.execute == f"EXECUTE {statement.name}(%s, %s)"


def test_prepared_statements_can_be_turned_off(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    session = ParkingSessionFactory()
    query = PreparedQuery(
        _current_session_query, driver_id=-1, cutoff=datetime(1901, 1, 1, tzinfo=UTC)
    )

    with CaptureQueriesContext(connection) as context:
        row = query.first(driver_id=session.driver_id, cutoff=datetime(2000, 1, 1, tzinfo=UTC))

    assert row["id"] == session.pk
    assert _statements(context) == ["SELECT"]


def test_columns_are_named_in_the_order_values_lists_them_annotations_included():
    session = ParkingSessionFactory()

    def build(session_id: int):
        return (
            ParkingSession.objects.filter(pk=session_id)
            .annotate(tag=F("currency"))
            .values("id", "tag", "state")
        )

    row = PreparedQuery(build, session_id=-1).first(session_id=session.pk)

    assert row == {"id": session.pk, "tag": session.currency, "state": session.state}
    assert list(row) == ["id", "tag", "state"]
