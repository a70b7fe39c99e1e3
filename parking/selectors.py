"""Reads the API and the back office need, each loading what its answer uses."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch

from accounts.models import User
from accounts.selectors import OAuthCredentials, oauth_credentials_of
from core.datetimes import iso_seconds
from core.rows import fetch_grouped_row, fetch_grouped_rows, model_instance, postgresql_database
from parking.models import (
    IdempotencyRecord,
    ParkingSession,
    SecuredParking,
    SecuredParkingQuerySet,
    SessionAuditEntry,
    Tariff,
    entering_cutoff,
)
from smart_keys.access_commands import access_point_tag
from smart_keys.models import AccessLogEntry, AccessPoint, ParkingKeyPair, SmartKey

# A session with everything its body reads, as one flat row: each column is named
# "<model>.<field>"; the access points come as one json array, which psycopg turns into a
# list (Django keeps only jsonb as text).
SESSION_BODY_SQL = """
SELECT s.id AS "session.id", s.driver_id AS "session.driver_id",
       s.secured_parking_id AS "session.secured_parking_id",
       s.smart_key_id AS "session.smart_key_id", s.type AS "session.type",
       s.state AS "session.state", s.start_time AS "session.start_time",
       s.end_time AS "session.end_time",
       s.entrance_remaining_tries AS "session.entrance_remaining_tries",
       s.exit_remaining_tries AS "session.exit_remaining_tries",
       s.amount AS "session.amount", s.currency AS "session.currency",
       s.tariff_terms::json AS "session.tariff_terms",
       p.id AS "parking.id", p.name AS "parking.name", p.is_active AS "parking.is_active",
       p.is_online AS "parking.is_online",
       t.secured_parking_id AS "tariff.secured_parking_id",
       t.free_minutes AS "tariff.free_minutes", t.period_minutes AS "tariff.period_minutes",
       t.price_per_period AS "tariff.price_per_period", t.daily_cap AS "tariff.daily_cap",
       k.id AS "key.id", k.driver_id AS "key.driver_id",
       k.secured_parking_id AS "key.secured_parking_id",
       k.description AS "key.description", k.type AS "key.type",
       k.access_command AS "key.access_command", k.start_time AS "key.start_time",
       k.end_time AS "key.end_time",
       (SELECT json_agg(json_build_object(
                   'id', ap.id, 'mac_address', ap.mac_address, 'direction', ap.direction
               ) ORDER BY ap.id)
        FROM smart_keys_smartkey_access_points m
        JOIN smart_keys_accesspoint ap ON ap.id = m.accesspoint_id
        WHERE m.smartkey_id = s.smart_key_id) AS "access_points.items"
FROM parking_parkingsession s
JOIN parking_securedparking p ON p.id = s.secured_parking_id
LEFT JOIN parking_tariff t ON t.secured_parking_id = s.secured_parking_id
JOIN smart_keys_smartkey k ON k.id = s.smart_key_id
"""
# The open states are literals, so the generic plan PostgreSQL keeps for a prepared
# statement can still use the partial index of one_open_session_per_driver, which also
# makes this at most one row.
CURRENT_SESSION_SQL = (
    SESSION_BODY_SQL
    + """WHERE s.driver_id = %s
  AND s.state IN ('entering', 'active', 'exiting')
  AND NOT (s.state = 'entering' AND s.start_time <= %s)
"""
)
DRIVER_SESSION_SQL = SESSION_BODY_SQL + "WHERE s.id = %s AND s.driver_id = %s\n"
# A page of the history and the driver's count of sessions, bounded, in one statement: the
# count comes on every row, and on a row of NULLs when the page is empty.
HISTORY_PAGE_SQL = f"""
WITH page AS (
{SESSION_BODY_SQL}WHERE s.driver_id = %s
ORDER BY s.start_time DESC, s.id DESC
LIMIT %s OFFSET %s
)
SELECT (SELECT count(*) FROM (
            SELECT 1 FROM parking_parkingsession c WHERE c.driver_id = %s LIMIT %s
        ) AS capped) AS "page.count",
       page.*
FROM (SELECT 1) AS one LEFT JOIN page ON TRUE
ORDER BY page."session.start_time" DESC, page."session.id" DESC
"""


def current_session_for(driver_id: int, *, now: datetime) -> ParkingSession | None:
    """The driver's open session, loaded like ``with_body()`` does.

    The app asks for it on every launch: on PostgreSQL it is one flat row (session, parking,
    tariff, key and the key's access points) from plain SQL."""
    database = postgresql_database()
    if database is None:
        # SQLite (the local demo) has other JSON functions, and its raw rows hold naive
        # datetimes and floats where the ORM gives aware datetimes and Decimals.
        sessions = ParkingSession.objects.filter(driver_id=driver_id).open(now)
        return sessions.with_body().first()
    with database.cursor() as cursor:
        row = fetch_grouped_row(cursor, CURRENT_SESSION_SQL, [driver_id, entering_cutoff(now)])
    return _session_from_row(row) if row else None


def driver_session(driver_id: int, session_id: int) -> ParkingSession | None:
    """One of the driver's sessions, loaded like ``with_body()`` does, in one query on
    PostgreSQL (as ``current_session_for``)."""
    database = postgresql_database()
    if database is None:
        sessions = ParkingSession.objects.filter(driver_id=driver_id, pk=session_id)
        return sessions.with_body().first()
    with database.cursor() as cursor:
        row = fetch_grouped_row(cursor, DRIVER_SESSION_SQL, [session_id, driver_id])
    return _session_from_row(row) if row else None


def driver_history_page(
    driver_id: int, *, limit: int, offset: int, count_limit: int
) -> tuple[list[ParkingSession], int]:
    """The driver's sessions ``offset`` to ``offset + limit``, newest first and loaded like
    ``with_body()`` does, and how many the driver has, counted up to ``count_limit`` + 1:
    one query on PostgreSQL."""
    database = postgresql_database()
    if database is None:
        sessions = ParkingSession.objects.filter(driver_id=driver_id)
        count = sessions.order_by().values("pk")[: count_limit + 1].count()
        return list(sessions.with_body()[offset : offset + limit]), count
    params = [driver_id, limit, offset, driver_id, count_limit + 1]
    with database.cursor() as cursor:
        rows = fetch_grouped_rows(cursor, HISTORY_PAGE_SQL, params)
    count = rows[0]["page"]["count"]
    return [_session_from_row(row) for row in rows if row["session"]["id"] is not None], count


def _session_from_row(row: dict[str, dict[str, Any]]) -> ParkingSession:
    session = model_instance(ParkingSession, row["session"])
    session.secured_parking = parking = model_instance(SecuredParking, row["parking"])
    if row["tariff"]["secured_parking_id"] is not None:
        parking.tariff = model_instance(Tariff, row["tariff"])
    session.smart_key = smart_key = model_instance(SmartKey, row["key"])
    smart_key.ordered_access_points = [
        model_instance(AccessPoint, access_point)
        for access_point in row["access_points"]["items"] or ()
    ]
    return session


@dataclass(frozen=True)
class AccountData:
    """Everything held about a driver (GDPR Articles 15 and 20)."""

    driver: User
    parking_sessions: list[ParkingSession]
    back_office_actions: list[SessionAuditEntry]
    access_log: list[AccessLogEntry]
    oauth: OAuthCredentials
    idempotency_records: list[IdempotencyRecord]


def account_data(driver: User) -> AccountData:
    """The driver's rows in every table, a constant number of queries however many."""
    return AccountData(
        # Read whole: the token's authentication loads only a few of its fields.
        driver=User.objects.get(pk=driver.pk),
        parking_sessions=list(ParkingSession.objects.for_driver(driver).with_body()),
        back_office_actions=list(
            SessionAuditEntry.objects.filter(session__driver=driver).order_by("created_at", "id")
        ),
        access_log=list(AccessLogEntry.objects.filter(driver=driver).order_by("created_at", "id")),
        oauth=oauth_credentials_of(driver),
        idempotency_records=list(driver.idempotency_records.order_by("created_at", "id")),
    )


def valid_smart_keys_for(driver: User, *, now: datetime) -> list[SmartKey]:
    """Keys the driver can use right now: inside their window and tied to an open session.

    A driver has at most one open session (one_open_session_per_driver), so this is that
    session's key, read with it in the query of ``current_session_for``; ``secured_parking``
    is set to the session's, which is the key's (a foreign key on both columns says so)."""
    session = current_session_for(driver.pk, now=now)
    if session is None:
        return []
    key = session.smart_key
    if key.driver_id != driver.pk or not key.start_time <= now < key.end_time:
        return []
    key.secured_parking = session.secured_parking
    return [key]


def back_office_parkings(user: User) -> SecuredParkingQuerySet:
    """The parkings ``user`` runs in the back office: all for superusers, else their operators'."""
    if user.is_superuser:
        return SecuredParking.objects.all()
    return SecuredParking.objects.run_by(user)


def barrier_provisioning(
    *, now: datetime, parking_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Per parking: the public keys and access point tags its barriers are provisioned with:
    the key that signs now, the next one a routine rotation published (barriers must hold
    it before its ``signs_from``) and the previous one while it is still trusted."""
    parkings = SecuredParking.objects.order_by("pk").prefetch_related(
        # Each parking's key_pairs.all() then holds the trusted ones only.
        Prefetch("key_pairs", queryset=ParkingKeyPair.objects.trusted(now)),
        Prefetch("access_points", queryset=AccessPoint.objects.order_by("direction", "id")),
    )
    if parking_ids:
        parkings = parkings.filter(pk__in=parking_ids)
    return [_provisioning(parking, now) for parking in parkings]


def _provisioning(parking: SecuredParking, now: datetime) -> dict[str, Any]:
    trusted = parking.key_pairs.all()  # prefetched: the trusted key pairs
    current = next((kp for kp in trusted if kp.signs_at(now)), None)
    waiting = next((kp for kp in trusted if kp.is_next_at(now)), None)
    previous = max(
        (kp for kp in trusted if kp not in (current, waiting)), key=_retired_at, default=None
    )
    return {
        "secured_parking_id": parking.pk,
        "name": parking.name,
        "is_online": parking.is_online,
        "current_key": current and _key(current),
        "next_key": waiting and _key(waiting),
        "previous_key": previous and _key(previous),
        "access_points": [
            {
                "id": access_point.pk,
                "mac_address": access_point.mac_address,
                "direction": access_point.direction,
                "tag": access_point_tag(access_point.mac_address).hex(),
            }
            for access_point in parking.access_points.all()
        ],
    }


def _retired_at(key_pair: ParkingKeyPair) -> datetime:
    assert key_pair.retired_at is not None  # asked of rotated-out key pairs only
    return key_pair.retired_at


def _key(key_pair: ParkingKeyPair) -> dict[str, str | None]:
    return {
        "key_id": key_pair.key_id,
        "public_key": key_pair.public_key,
        "created_at": iso_seconds(key_pair.created_at),
        "signs_from": iso_seconds(key_pair.signs_from),
        "accepted_until": iso_seconds(key_pair.accepted_until),
    }
