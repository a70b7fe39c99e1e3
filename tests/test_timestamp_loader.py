"""Timestamps read through parking_api.postgresql come back as Django's own loader gives them:
aware, in UTC, to the microsecond, whatever offset PostgreSQL was given."""

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.utils import timezone
from psycopg.pq import Format

from parking_api.postgresql.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader
from tests.factories import ParkingSessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LITERALS = [
    "2026-03-29 02:59:59.999999+03",  # Romania's switch to summer time
    "2026-10-25 03:30:00.5+02",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2026-12-04 12:00:00-09:30",
]


def test_timestamps_load_as_djangos_own_loader_loads_them():
    sql = "SELECT " + ", ".join(f"'{literal}'::timestamptz" for literal in LITERALS)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        loaded = cursor.fetchone()
        djangos = type("UtcTzLoader", (BaseTzLoader,), {"timezone": datetime.UTC})
        cursor.cursor.adapters.register_loader("timestamptz", djangos)
        cursor.execute(sql)
        expected = cursor.fetchone()

    assert loaded == expected
    assert [value.tzinfo for value in loaded] == [datetime.UTC] * len(LITERALS)
    assert [value.utcoffset() for value in loaded] == [datetime.timedelta(0)] * len(LITERALS)


def test_a_model_reads_back_the_instant_it_wrote_while_another_zone_is_active():
    start = datetime.datetime(2026, 7, 1, 9, 15, 30, 123456, tzinfo=datetime.UTC)
    session = ParkingSessionFactory(start_time=start)

    with timezone.override("Europe/Bucharest"):
        read = type(session).objects.get(pk=session.pk).start_time

    assert read == start
    assert read.tzinfo is datetime.UTC


def test_djangos_cursors_keep_the_compiled_loader():
    # Django replaces a cursor's loader whose `timezone` differs from the connection's.
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)

    assert loader is UtcTimestamptzLoader
