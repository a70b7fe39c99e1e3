"""The driver API stays cheap as history grows: free places are counted from the open
sessions alone, no page counts a driver's whole history, and on a seeded PostgreSQL table
no query of any driver endpoint reads sessions, smart keys or the access log by a
sequential scan (EXPLAIN, not a timing)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from core.paginators import CappedCountPaginator
from parking.models import ParkingSession, SecuredParking, State
from parking.services.occupancy import recount_occupancy
from smart_keys.models import AccessLogEntry, SmartKey
from tests.api import (
    CURRENT_URL,
    SECURED_PARKINGS_URL,
    SESSIONS_URL,
    SMART_KEYS_URL,
    act,
    json_body,
    new_session,
    session_url,
)
from tests.factories import ParkingSessionFactory, SecuredParkingFactory, finished_sessions

pytestmark = pytest.mark.django_db

LARGE_TABLES = {
    model._meta.db_table: model.__name__ for model in (ParkingSession, SmartKey, AccessLogEntry)
}


def free_places(client, parking) -> int:
    listed = json_body(client.get(SECURED_PARKINGS_URL), 200)["results"]
    return next(item["free_places"] for item in listed if item["id"] == parking.pk)


def test_free_places_count_only_the_sessions_holding_a_place_now(driver_client):
    now = timezone.now()
    parking = SecuredParkingFactory(capacity=10)
    for state in (State.ACTIVE, State.EXITING, State.ENTERING):
        ParkingSessionFactory(secured_parking=parking, state=state)
    # Past its entrance deadline: counts as cancelled, written down or not.
    ParkingSessionFactory(
        secured_parking=parking, state=State.ENTERING, start_time=now - timedelta(days=1)
    )
    for state in (State.FINISHED, State.CANCELLED):
        ParkingSessionFactory(
            secured_parking=parking, state=state, start_time=now - timedelta(hours=1), end_time=now
        )
    ParkingSessionFactory(state=State.ACTIVE)  # at another parking
    empty = SecuredParkingFactory(capacity=4)

    assert free_places(driver_client, parking) == 7
    assert free_places(driver_client, empty) == 4


def test_free_places_follow_every_change_of_state(driver_client):
    parking = SecuredParkingFactory(capacity=3)
    session_id = new_session(driver_client, parking)["parking_session"]["id"]
    assert free_places(driver_client, parking) == 2

    act(driver_client, session_id, "enter")
    act(driver_client, session_id, "exit")
    assert free_places(driver_client, parking) == 2
    act(driver_client, session_id, "finalize")
    assert free_places(driver_client, parking) == 3

    cancelled = new_session(driver_client, parking)["parking_session"]["id"]
    act(driver_client, cancelled, "cancel")
    assert free_places(driver_client, parking) == 3


def test_the_history_count_stops_at_the_cap(driver_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_limit", 4)
    parking = SecuredParkingFactory()
    finished_sessions(
        parking, [driver_client.driver], 6, first_start=timezone.now(), step=timedelta(days=-1)
    )

    with CaptureQueriesContext(connection) as queries:
        first = json_body(driver_client.get(SESSIONS_URL, {"page_size": 2}), 200)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    last = json_body(driver_client.get(SESSIONS_URL, {"page_size": 2, "page": 2}), 200)
    past = driver_client.get(SESSIONS_URL, {"page_size": 2, "page": 3})
    final = json_body(driver_client.get(SESSIONS_URL, {"page_size": 2, "page": "last"}), 200)

    assert len(counts) == 1, counts
    assert re.search(
        r"COUNT\(\*\) FROM \(\s*SELECT 1 FROM \S+ \S+ WHERE [^()]+ LIMIT", counts[0], re.I
    )
    assert (first["count"], last["count"], last["next"]) == (4, 4, None)
    assert past.status_code == 404
    assert final == last


@pytest.mark.parametrize("page", ["2", "5001", str(2**63), "29430353479108059463680"])
def test_a_history_page_past_the_cap_or_the_end_is_404(driver_client, page):
    ParkingSessionFactory(driver=driver_client.driver)

    response = driver_client.get(SESSIONS_URL, {"page": page, "page_size": 2})

    assert response.status_code == 404, response.content


def test_the_parking_list_reads_its_count_with_the_page(driver_client):
    SecuredParkingFactory()

    with CaptureQueriesContext(connection) as queries:
        json_body(driver_client.get(SECURED_PARKINGS_URL), 200)

    listed = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(listed) == 1, listed
    assert re.search(r"COUNT\(\*\) OVER \(\)", listed[0], re.I), listed[0]
    assert "LIMIT" in listed[0], listed[0]


def test_the_parking_list_pages_and_counts_as_every_list(driver_client, monkeypatch):
    parkings = sorted(SecuredParkingFactory.create_batch(5), key=lambda p: (p.name, p.pk))
    names = [parking.name for parking in parkings]

    def page(number: object) -> dict:
        return json_body(
            driver_client.get(SECURED_PARKINGS_URL, {"page_size": 2, "page": number}), 200
        )

    first, second, third = page(1), page(2), page(3)
    assert [first["count"], second["count"], third["count"]] == [5, 5, 5]
    assert [
        item["name"] for item in first["results"] + second["results"] + third["results"]
    ] == names
    assert first["previous"] is None and first["next"].endswith("page=2&page_size=2")
    assert third["next"] is None
    assert page("last") == third
    for past in ("4", "0", "x", "29430353479108059463680"):
        response = driver_client.get(SECURED_PARKINGS_URL, {"page_size": 2, "page": past})
        assert response.status_code == 404, (past, response.content)

    monkeypatch.setattr(CappedCountPaginator, "count_limit", 4)
    assert page(1)["count"] == 4
    assert driver_client.get(SECURED_PARKINGS_URL, {"page_size": 2, "page": 3}).status_code == 404


def test_an_empty_parking_list_is_one_empty_page(driver_client):
    assert json_body(driver_client.get(SECURED_PARKINGS_URL), 200) == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


# Plans on a seeded table. PostgreSQL picks a sequential scan for a table of a few pages
# whatever the indexes, so each test loads enough history for an index to matter.

HISTORY = 12_000
PARKINGS = 12
OPEN_PER_PARKING = 40


@pytest.fixture
def seeded_history(driver_client):
    """A history of ``HISTORY`` finished sessions at ``PARKINGS`` parkings, some open
    sessions at each, and the driver's own 30 finished sessions and an open one."""
    now = timezone.now()
    drivers = User.objects.bulk_create(
        User(email=f"history{i}@example.com", password="!") for i in range(1_000)
    )
    parkings = [SecuredParkingFactory(capacity=100) for _ in range(PARKINGS)]
    per_parking = HISTORY // PARKINGS
    for parking in parkings:
        finished_sessions(
            parking, drivers, per_parking, first_start=now - timedelta(days=700),
            step=timedelta(days=700) / per_parking,
        )  # fmt: skip
    # Some of the others' sessions are open now: one per driver, at every parking.
    open_ids = []
    for index, parking in enumerate(parkings):
        for driver in drivers[index * OPEN_PER_PARKING : (index + 1) * OPEN_PER_PARKING]:
            open_ids.append(
                ParkingSession.objects.filter(driver=driver, secured_parking=parking)
                .values_list("pk", flat=True)
                .first()
            )
    ParkingSession.objects.filter(pk__in=open_ids).update(state=State.ACTIVE, end_time=None)
    recount_occupancy()  # the bulk update went around the services that count parked cars
    driver = driver_client.driver
    finished_sessions(
        parkings[0], [driver], 30, first_start=now - timedelta(days=60), step=timedelta(days=2)
    )
    session_id = new_session(driver_client, parkings[1])["parking_session"]["id"]
    act(driver_client, session_id, "enter")
    with connection.cursor() as cursor:
        for table in [*LARGE_TABLES, User._meta.db_table, SecuredParking._meta.db_table]:
            cursor.execute(f"ANALYZE {table}")
    return {"parkings": parkings, "session_id": session_id}


def explained(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        return cursor.fetchone()[0][0]["Plan"]


# Rows read from a table's heap by sequential scans and entries read from its indexes, in
# this transaction so far (PostgreSQL's per-transaction statistics: exact, unlike EXPLAIN
# ANALYZE's rows, which are averaged per loop and rounded).
ROWS_READ_SQL = """
SELECT sum(pg_stat_get_xact_tuples_returned(oid))::int FROM pg_class
WHERE oid = %(table)s::regclass
   OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %(table)s::regclass)
"""


def rows_read(sql: str, table: str) -> int:
    """The rows and index entries of ``table`` that running ``sql`` reads."""
    with connection.cursor() as cursor:
        cursor.execute(ROWS_READ_SQL, {"table": table})
        (before,) = cursor.fetchone()
        cursor.execute(sql)
        cursor.execute(ROWS_READ_SQL, {"table": table})
        (after,) = cursor.fetchone()
    return after - before


def sequential_scans(plan: dict) -> list[str]:
    """The large tables ``plan`` reads by a sequential scan."""
    here = []
    if plan["Node Type"] == "Seq Scan" and plan.get("Relation Name") in LARGE_TABLES:
        here.append(LARGE_TABLES[plan["Relation Name"]])
    return here + [table for child in plan.get("Plans", []) for table in sequential_scans(child)]


def large_table_queries(queries: CaptureQueriesContext) -> list[str]:
    """The reads, updates and deletes of the large tables among ``queries`` (inserts scan
    nothing)."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH"))
        and any(table in query["sql"] for table in LARGE_TABLES)
    ]


def assert_no_sequential_scan(queries: CaptureQueriesContext) -> None:
    large = large_table_queries(queries)
    assert large, "the request reads no large table"
    for sql in large:
        assert not sequential_scans(explained(sql)), sql


READS = {
    "secured_parkings": lambda seeded: SECURED_PARKINGS_URL,
    "smart_keys": lambda seeded: SMART_KEYS_URL,
    "history, first page": lambda seeded: SESSIONS_URL,
    "history, a deep page": lambda seeded: f"{SESSIONS_URL}?page_size=5&page=5",
    "a session": lambda seeded: session_url(seeded["session_id"]),
    "current": lambda seeded: CURRENT_URL,
}


@pytest.mark.postgres
@pytest.mark.parametrize("endpoint", READS)
def test_no_read_of_a_driver_endpoint_scans_a_large_table(driver_client, seeded_history, endpoint):
    with CaptureQueriesContext(connection) as queries:
        json_body(driver_client.get(READS[endpoint](seeded_history)), 200)

    assert_no_sequential_scan(queries)


@pytest.mark.postgres
def test_the_parking_list_reads_the_drivers_at_the_entrance_and_no_parked_session(
    driver_client, seeded_history
):
    ParkingSessionFactory(secured_parking=seeded_history["parkings"][0], state=State.ENTERING)
    with CaptureQueriesContext(connection) as queries:
        listed = json_body(driver_client.get(SECURED_PARKINGS_URL), 200)["results"]

    (sql,) = large_table_queries(queries)
    # 481 cars parked at the 12 parkings, one driver at an entrance: what is read is that
    # session's index entry, an outdated one of the driver's (entering before it entered)
    # and the planner's look at the start times' extremes: a handful, whatever is parked.
    assert rows_read(sql, ParkingSession._meta.db_table) < 10
    assert sum(item["capacity"] - item["free_places"] for item in listed) == 482


WRITE_PATH = ["start", "entrance_try", "enter", "exit", "exit_try", "finalize"]


@pytest.mark.postgres
@pytest.mark.parametrize("step", [*WRITE_PATH, "cancel"])
def test_no_step_of_the_write_path_scans_a_large_table(driver_client, seeded_history, step):
    # The driver leaves the parking they are in, then parks at another one up to ``step``.
    for action in ["exit", "finalize"]:
        act(driver_client, seeded_history["session_id"], action)
    parking = seeded_history["parkings"][2]
    steps = ["start", "cancel"] if step == "cancel" else WRITE_PATH[: WRITE_PATH.index(step) + 1]
    session_id = None
    for action in steps[:-1]:
        if action == "start":
            session_id = new_session(driver_client, parking)["parking_session"]["id"]
        else:
            act(driver_client, session_id, action)

    with CaptureQueriesContext(connection) as queries:
        if step == "start":
            new_session(driver_client, parking)
        else:
            act(driver_client, session_id, step)

    assert_no_sequential_scan(queries)
