"""The floor: a bare WSGI function answering ``GET /api/car_driver/parking_sessions/current``.

Same request, same bytes as the project, with the least a Python web app can do: one reused
psycopg2 connection per worker, one query for the token and one for the session with its key,
parking, tariff and access points (``json_agg``), both server-side prepared statements
(``PREPARE`` once per connection, then ``EXECUTE``, as the project does), the amount computed
like ``Tariff.amount_for``, and the body rendered like DRF's ``JSONRenderer``. Served by the
same gunicorn settings as the project, it is what the project is compared with.

Not a second implementation of the API: anything but that one GET answers 404, and tokens
restricted to a resource (RFC 8707 audiences, which the benchmark never issues) answer 401.

Environment: ``DATABASE_URL`` (as the project), ``PARKING_ENTERING_TIMEOUT_SECONDS`` (900),
``BENCH_FLOOR_ERRORS`` (``drf``: ``{"detail": …}``, or ``standardized``: the
drf-standardized-errors envelope), picked by the harness to match what the project answers,
``BENCH_FLOOR_PREPARED`` (``1``; ``0`` sends the plain SQL every time, for PostgreSQL to plan
again: the floor of the runs before the project prepared its statements).
"""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

import psycopg2

PATH = "/api/car_driver/parking_sessions/current"
ENTERING_TIMEOUT = timedelta(seconds=int(os.environ.get("PARKING_ENTERING_TIMEOUT_SECONDS", 900)))
ERROR_STYLE = os.environ.get("BENCH_FLOOR_ERRORS", "drf")
PREPARED = os.environ.get("BENCH_FLOOR_PREPARED", "1") == "1"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DAY = timedelta(days=1)

TOKEN_SQL = """
SELECT t.user_id
FROM oauth2_provider_accesstoken t
JOIN accounts_user u ON u.id = t.user_id
WHERE t.token_checksum = $1 AND t.expires > $2 AND u.is_active
  AND (t.resource IS NULL OR t.resource = '[]'::jsonb)
"""

SESSION_SQL = """
SELECT s.id, s.type, s.state, s.start_time, s.end_time, s.entrance_remaining_tries,
       s.exit_remaining_tries, s.amount, s.currency,
       k.id, k.secured_parking_id, p.name, k.description, p.is_active, k.type, k.access_command,
       p.is_online, k.start_time, k.end_time,
       t.secured_parking_id IS NOT NULL, t.free_minutes, t.period_minutes, t.price_per_period,
       t.daily_cap,
       (SELECT json_agg(json_build_array(ap.id, ap.mac_address, ap.direction) ORDER BY ap.id)
        FROM smart_keys_smartkey_access_points m
        JOIN smart_keys_accesspoint ap ON ap.id = m.accesspoint_id
        WHERE m.smartkey_id = k.id)
FROM parking_parkingsession s
JOIN smart_keys_smartkey k ON k.id = s.smart_key_id
JOIN parking_securedparking p ON p.id = k.secured_parking_id
LEFT JOIN parking_tariff t ON t.secured_parking_id = s.secured_parking_id
WHERE s.driver_id = $1 AND s.state IN ('entering', 'active', 'exiting')
  AND NOT (s.state = 'entering' AND s.start_time <= $2)
ORDER BY s.start_time DESC, s.id DESC
LIMIT 1
"""

# Each query as a prepared statement, and as plain text with psycopg2 placeholders: built
# once here, so neither floor spends a request rewriting SQL.
STATEMENTS = {"floor_token": TOKEN_SQL, "floor_session": SESSION_SQL}
PREPARE = {name: f"PREPARE {name} AS {sql}" for name, sql in STATEMENTS.items()}
EXECUTE = {name: f"EXECUTE {name}(%s, %s)" for name in STATEMENTS}
PLAIN = {name: sql.replace("$1", "%s").replace("$2", "%s") for name, sql in STATEMENTS.items()}

# What DRF and Django's middleware put on every API answer of the project.
COMMON_HEADERS = [
    ("Allow", "GET, HEAD, OPTIONS"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Vary", "Accept-Language"),
    ("Content-Language", "ro"),
]
WWW_AUTHENTICATE = (
    'Bearer realm="api",error="invalid_token",'
    'error_description="The access token is invalid, expired or revoked."'
)
# The bench's requests name no language, so the project answers in its default, Romanian;
# the harness's identity check (bench/checks.py) catches a catalog that says otherwise.
NO_CREDENTIALS = "Datele de autentificare nu au fost furnizate."
NO_SESSION = "Nu aveți nicio sesiune de parcare deschisă."

queries = 0  # statements sent, for the harness's queries-per-request count
_connection = None
_prepared: set[str] = set()  # statements prepared on _connection


def _dsn() -> str:
    url = urlsplit(os.environ["DATABASE_URL"])
    parts = {
        "dbname": url.path.lstrip("/"),
        "host": url.hostname,
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def _cursor():
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg2.connect(_dsn(), options="-c TimeZone=UTC")
        _connection.autocommit = True
        _prepared.clear()
    return _connection.cursor()


def _fetch(name: str, params: tuple):
    global queries, _connection
    try:
        with _cursor() as cur:
            if PREPARED and name not in _prepared:
                queries += 1
                cur.execute(PREPARE[name])
                _prepared.add(name)
            queries += 1
            cur.execute(EXECUTE[name] if PREPARED else PLAIN[name], params)
            return cur.fetchone()
    except psycopg2.OperationalError:
        _connection = None  # reconnect next time, as CONN_HEALTH_CHECKS would
        raise


def _render(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _error(code: str, detail: str) -> bytes:
    if ERROR_STYLE == "standardized":
        return _render(
            {"type": "client_error", "errors": [{"code": code, "detail": detail, "attr": None}]}
        )
    return _render({"detail": detail})


def _utc_seconds(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _charge_within_a_day(span: timedelta, period: int, price: Decimal, cap) -> Decimal:
    if span <= timedelta(0):
        return Decimal("0")
    charge = -(-span // timedelta(minutes=period)) * price
    return min(charge, cap) if cap is not None else charge


def _amount_for(duration: timedelta, free: int, period: int, price: Decimal, cap) -> Decimal:
    """``Tariff.amount_for``: free grace period, then per started period, capped each 24 h."""
    if duration <= timedelta(minutes=free):
        return ZERO
    full_days, rest = divmod(duration, DAY)
    total = full_days * _charge_within_a_day(DAY, period, price, cap) + _charge_within_a_day(
        rest, period, price, cap
    )
    return total.quantize(CENT, ROUND_HALF_UP)


def _body(row, now: datetime) -> bytes:
    (
        sid,
        stype,
        state,
        start,
        end,
        e_tries,
        x_tries,
        amount,
        currency,
        kid,
        kparking,
        pname,
        kdesc,
        pactive,
        ktype,
        command,
        ponline,
        kstart,
        kend,
        has_tariff,
        free,
        period,
        price,
        cap,
        access_points,
    ) = row
    if state == "active" and has_tariff:
        amount = _amount_for(now - start, free, period, price, cap)
    return _render(
        {
            "amount": str(amount.quantize(CENT)),
            "currency": currency,
            "parking_session": {
                "id": sid,
                "type": stype,
                "state": state,
                "start_time": _utc_seconds(start),
                "end_time": _utc_seconds(end),
                "entrance_remaining_tries": e_tries,
                "exit_remaining_tries": x_tries,
            },
            "smart_key": {
                "id": kid,
                "secured_parking_id": kparking,
                "name": pname,
                "description": kdesc,
                "is_active": pactive,
                "type": ktype,
                "access_command": command,
                "is_online": ponline,
                "start_time": _utc_seconds(kstart),
                "end_time": _utc_seconds(kend),
                "access_points": [
                    {"access_point": {"id": i, "mac_address": mac, "direction": direction}}
                    for i, mac, direction in access_points or ()
                ],
            },
        }
    )


def _bearer(environ) -> str | None:
    parts = environ.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _answer(environ) -> tuple[str, bytes, list]:
    if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
        return "404 Not Found", _error("not_found", "Not found."), []
    token = _bearer(environ)
    now = datetime.now(UTC)
    user = None
    if token is not None:
        user = _fetch("floor_token", (hashlib.sha256(token.encode()).hexdigest(), now))
    if user is None:
        body = _error("not_authenticated", NO_CREDENTIALS)
        return "401 Unauthorized", body, [("WWW-Authenticate", WWW_AUTHENTICATE)]
    row = _fetch("floor_session", (user[0], now - ENTERING_TIMEOUT))
    if row is None:
        return "404 Not Found", _error("not_found", NO_SESSION), []
    return "200 OK", _body(row, now), []


def application(environ, start_response):
    status, body, extra = _answer(environ)
    headers = [("Content-Type", "application/json"), *extra, *COMMON_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]
