"""The back office stays cheap as tables grow: every list costs the same queries for few rows
and many, the session list never counts a million rows, and every large table's list is read
newest first from an index."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from core.admin_large_tables import LargeTableAdmin
from core.paginators import CappedCountPaginator
from parking.models import Debt, ParkingSession, SecuredParking, State
from parking.services.access import record_access
from payments.models import Payment, PaymentState
from smart_keys.models import AccessEvent, AccessLogEntry, AccessPoint, AccessResult, SmartKey
from tests.api import act, new_session
from tests.back_office import changelist_url, listed, staff_client
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    finished_sessions,
)

pytestmark = pytest.mark.django_db

SESSIONS = changelist_url(ParkingSession)
SESSION_TABLE = ParkingSession._meta.db_table
PAYMENT_TABLE = Payment._meta.db_table


LARGE_TABLE_ADMINS = [
    model_admin
    for model_admin in admin.site._registry.values()
    if isinstance(model_admin, LargeTableAdmin)
]


def ordered_through_a_relation(model_admin) -> bool:
    return "__" in model_admin.ordering[0]


@pytest.mark.parametrize(
    "model_admin",
    [a for a in LARGE_TABLE_ADMINS if not ordered_through_a_relation(a)],
    ids=lambda model_admin: model_admin.model.__name__,
)
def test_a_large_tables_list_order_is_an_index(model_admin):
    # Without one, page 1 sorts every row of the table (a million keys, a million sessions).
    indexed = [tuple(index.fields) for index in model_admin.model._meta.indexes]
    newest_first = tuple(model_admin.ordering)
    one_operators = (model_admin.parking_path, newest_first[0])

    assert newest_first in indexed
    assert one_operators in [fields[:2] for fields in indexed]


@pytest.mark.parametrize(
    "model_admin",
    [a for a in LARGE_TABLE_ADMINS if ordered_through_a_relation(a)],
    ids=lambda model_admin: model_admin.model.__name__,
)
def test_a_list_ordered_by_another_tables_column_reads_a_partial_index_of_it(model_admin):
    # The debts: ordered by when each payment became outstanding, read from the payments'
    # index of debts only, so a page costs the debts, not the sessions or the payments; an
    # operator's are filtered among those few (the EXPLAIN test below measures it).
    first = model_admin.ordering[0]
    *relations, column = first.removeprefix("-").split("__")
    model = model_admin.model
    for name in relations:
        model = model._meta.get_field(name).related_model
    order = ("-" if first.startswith("-") else "") + column

    partial = [index for index in model._meta.indexes if index.condition is not None]
    assert order in [index.fields[0] for index in partial], (model, order)


def get_with_queries(client, url: str, params: dict | None = None) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return response, [query["sql"] for query in queries.captured_queries]


def counts_of_sessions(queries: list[str]) -> list[str]:
    return [sql for sql in queries if "COUNT(" in sql.upper() and SESSION_TABLE in sql]


@pytest.fixture
def operator():
    return OperatorFactory()


@pytest.fixture
def parking(operator):
    return SecuredParkingFactory(operator=operator, access_points=2)


def sessions_in(parking, count: int) -> None:
    for _ in range(count):
        ParkingSessionFactory(secured_parking=parking)


@pytest.mark.parametrize("model", [SecuredParking, ParkingSession, AccessPoint, SmartKey])
def test_changelist_queries_do_not_grow_with_the_rows(superuser_client, model):
    url = changelist_url(model)
    for _ in range(2):
        ParkingSessionFactory(secured_parking__access_points=2)
    few, few_queries = get_with_queries(superuser_client, url)
    for _ in range(18):
        ParkingSessionFactory(secured_parking__access_points=2)

    many, many_queries = get_with_queries(superuser_client, url)

    assert len(listed(many)) == 10 * len(listed(few))
    assert len(many_queries) == len(few_queries), "\n".join(many_queries)


def test_the_access_log_list_costs_a_constant_number_of_queries(
    superuser_client, driver_client, parking, django_assert_num_queries
):
    url = changelist_url(AccessLogEntry)
    session_id = new_session(driver_client, parking)["parking_session"]["id"]
    one, one_entry_queries = get_with_queries(superuser_client, url)
    for _ in range(3):
        act(driver_client, session_id, "entrance_try")

    # session + user, page count, the page with driver, parking and access point, and the
    # parking filter's choices, whatever the number of rows
    with django_assert_num_queries(len(one_entry_queries)):
        seven = superuser_client.get(url)

    assert seven.status_code == 200
    assert (len(listed(one)), len(listed(seven))) == (1, 7)
    assert len(one_entry_queries) <= 8, "\n".join(one_entry_queries)


@pytest.mark.parametrize("who", ["staff", "superuser"])
@pytest.mark.parametrize("params", [{}, {"state__exact": "active"}, {"q": "driver"}])
def test_the_session_list_never_counts_the_whole_table(
    operator, parking, superuser_client, who, params
):
    sessions_in(parking, 3)
    client = staff_client(operator) if who == "staff" else superuser_client

    response, queries = get_with_queries(client, SESSIONS, params)

    assert len(listed(response)) == 3
    counts = counts_of_sessions(queries)
    assert counts, "the pages need a count"
    for sql in counts:
        assert re.search(r"LIMIT \d+", sql), f"unbounded count: {sql}"


@pytest.mark.parametrize("model", [SmartKey, AccessLogEntry])
@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_the_key_and_access_log_lists_are_just_as_bounded(
    operator, parking, superuser_client, model, who
):
    client = staff_client(operator) if who == "staff" else superuser_client
    url = changelist_url(model)
    table = model._meta.db_table

    def a_session_with_a_log_entry() -> None:
        session = ParkingSessionFactory(secured_parking=parking)
        record_access(
            session=session, event=AccessEvent.ENTRANCE_TRY, result=AccessResult.GRANTED,
            now=timezone.now(),
        )  # fmt: skip

    for _ in range(2):
        a_session_with_a_log_entry()
    few, few_queries = get_with_queries(client, url)
    for _ in range(18):
        a_session_with_a_log_entry()

    many, many_queries = get_with_queries(client, url)

    assert len(listed(many)) == 10 * len(listed(few)) == 20
    assert len(many_queries) == len(few_queries), "\n".join(many_queries)
    counts = [sql for sql in many_queries if "COUNT(" in sql.upper() and table in sql]
    assert counts and all(re.search(r"LIMIT \d+", sql) for sql in counts), counts
    assert not [sql for sql in many_queries if "DISTINCT" in sql.upper()]


def test_the_date_drill_down_reads_two_rows_instead_of_every_distinct_date(
    superuser_client, parking
):
    sessions_in(parking, 3)

    _response, queries = get_with_queries(superuser_client, SESSIONS)

    assert not [sql for sql in queries if "DISTINCT" in sql.upper()]
    assert not [sql for sql in queries if "MIN(" in sql.upper() or "MAX(" in sql.upper()]


def test_facet_counts_are_never_computed(superuser_client, parking):
    sessions_in(parking, 3)

    _plain, plain_queries = get_with_queries(superuser_client, SESSIONS)
    _faceted, faceted_queries = get_with_queries(superuser_client, SESSIONS, {"_facets": "1"})

    assert len(faceted_queries) == len(plain_queries)


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_the_session_list_costs_the_same_queries_for_2_and_20_rows(
    operator, parking, superuser_client, who
):
    client = staff_client(operator) if who == "staff" else superuser_client
    other_operators_parking = SecuredParkingFactory(operator=OperatorFactory())
    sessions_in(parking, 2)
    sessions_in(other_operators_parking, 2)
    few, few_queries = get_with_queries(client, SESSIONS)
    sessions_in(parking, 18)
    sessions_in(other_operators_parking, 18)

    many, many_queries = get_with_queries(client, SESSIONS)

    assert len(listed(many)) == 10 * len(listed(few))
    assert len(many_queries) == len(few_queries), "\n".join(many_queries)


def test_past_the_count_limit_the_list_says_more_than(superuser_client, parking, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_limit", 4)
    sessions_in(parking, 6)

    response = superuser_client.get(SESSIONS, {"all": ""})

    assert response.context["cl"].result_count == 4
    assert "More than 4 parking sessions" in response.content.decode()


def test_under_the_count_limit_the_count_is_exact(superuser_client, parking):
    sessions_in(parking, 3)

    response = superuser_client.get(SESSIONS)

    assert response.context["cl"].result_count == 3
    assert "3 parking sessions" in response.content.decode()


def test_the_date_drill_down_offers_the_years_then_the_months_of_the_list(
    superuser_client, parking
):
    for start in [(2024, 11, 3), (2026, 1, 10), (2026, 3, 1)]:
        start_time = datetime(*start, tzinfo=UTC)
        ParkingSessionFactory(secured_parking=parking, state=State.FINISHED, start_time=start_time)

    years = superuser_client.get(SESSIONS).content.decode()
    months = superuser_client.get(SESSIONS, {"start_time__year": "2026"}).content.decode()

    assert "?start_time__year=2024" in years and "?start_time__year=2026" in years
    assert "?start_time__year=2025" in years  # a year between, without a query of its own
    assert all(f"{month} 2026" in months for month in ["January", "February", "March"])
    assert "April 2026" not in months and "December 2025" not in months


def test_the_date_drill_down_goes_straight_to_days_when_all_is_in_one_month(
    superuser_client, parking
):
    for day in (3, 5):
        start = datetime(2026, 2, day, 9, tzinfo=UTC)
        ParkingSessionFactory(secured_parking=parking, state=State.FINISHED, start_time=start)

    page = superuser_client.get(SESSIONS).content.decode()

    assert "February 3" in page and "February 4" in page and "February 5" in page
    assert "February 6" not in page


@pytest.mark.postgres
def test_postgresql_never_reads_the_whole_session_table_for_a_page(
    operator, parking, superuser_client
):
    table_size = 20_005
    drivers = User.objects.bulk_create(
        User(email=f"regular{i}@example.com", password="!") for i in range(2_000)
    )
    many_sessions(parking, drivers, table_size - 5)
    # Searched for: a driver with a handful of sessions among the many.
    many_sessions(parking, [DriverFactory(email="maria@example.com")], 5)
    pages = {
        "all": {},
        "by state": {"state__exact": "finished"},
        "by parking": {"secured_parking__id__exact": str(parking.pk)},
        "today": {"start_time__gte": str(timezone.now().replace(hour=0, minute=0, second=0))},
        "by driver email": {"q": "maria@"},
    }

    for client in [staff_client(operator), superuser_client]:
        for name, params in pages.items():
            _response, queries = get_with_queries(client, SESSIONS, params)
            session_queries = [sql for sql in queries if SESSION_TABLE in sql]
            assert session_queries, name
            for sql in session_queries:
                read = session_rows_read(sql)
                assert read <= CappedCountPaginator.count_limit + 1 < table_size, (name, sql)


def session_rows_read(query: str) -> int:
    """How many session rows PostgreSQL reads to answer ``query`` (EXPLAIN ANALYZE)."""
    return rows_read(query, SESSION_TABLE)


def rows_read(query: str, table: str) -> int:
    """How many rows of ``table`` PostgreSQL reads to answer ``query`` (EXPLAIN ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}")
        plan = cursor.fetchone()[0][0]["Plan"]

    def read(node: dict) -> int:
        here = 0
        if node.get("Relation Name") == table:
            returned = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            here = returned * node["Actual Loops"]
        return here + sum(read(child) for child in node.get("Plans", []))

    return read(plan)


def many_sessions(parking, drivers: list, count: int) -> None:
    """``count`` finished sessions of ``drivers`` over the last year, then fresh statistics."""
    year = timedelta(days=365)
    finished_sessions(parking, drivers, count, first_start=timezone.now() - year, step=year / count)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {SESSION_TABLE}")
        cursor.execute(f"ANALYZE {User._meta.db_table}")


@pytest.mark.postgres
def test_postgresql_reads_only_the_debts_for_a_debts_page(operator, parking, superuser_client):
    table_size, owing = 20_005, 30
    drivers = User.objects.bulk_create(
        User(email=f"regular{i}@example.com", password="!") for i in range(2_000)
    )
    many_sessions(parking, drivers, table_size)
    sessions = list(ParkingSession.objects.order_by("pk"))
    now = timezone.now()
    every = table_size // owing
    payments = Payment.objects.bulk_create(
        payment_of(session, owing=i % every == 0, now=now - timedelta(minutes=i))
        for i, session in enumerate(sessions)
    )
    for session, payment in zip(sessions, payments, strict=True):
        session.payment = payment
    ParkingSession.objects.bulk_update(sessions, ["payment"], batch_size=2_000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {SESSION_TABLE}")
        cursor.execute(f"ANALYZE {PAYMENT_TABLE}")
    debts = Payment.objects.outstanding().count()
    assert owing <= debts < 2 * owing

    for client in [staff_client(operator), superuser_client]:
        response, queries = get_with_queries(client, changelist_url(Debt))
        assert len(listed(response)) == debts
        for sql in [sql for sql in queries if SESSION_TABLE in sql]:
            assert rows_read(sql, SESSION_TABLE) <= debts, sql
            assert rows_read(sql, PAYMENT_TABLE) <= debts, sql


def payment_of(session: ParkingSession, *, owing: bool, now: datetime) -> Payment:
    """A payment of 10.00 for ``session``: captured, or left owing at ``now``."""
    return Payment(
        driver_id=session.driver_id,
        provider="stripe",
        idempotency_key=f"k{session.pk}",
        state=PaymentState.OUTSTANDING if owing else PaymentState.CAPTURED,
        currency="RON",
        hold_amount=Decimal("40.00"),
        amount=Decimal("10.00"),
        captured_amount=Decimal("0.00") if owing else Decimal("10.00"),
        outstanding_since=now if owing else None,
        created_at=now,
        updated_at=now,
    )
