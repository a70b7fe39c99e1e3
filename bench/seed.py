"""Create and fill a benchmark database at scale, in SQL on the server (no row goes through Python).

    python -m bench.seed --db parking_bench --drivers 100000 --sessions 1000000 --open 50000

Drops and recreates the database, runs the project's migrations on it, then loads every table
with ``INSERT … SELECT generate_series`` (one transaction, foreign-key triggers off while
loading: the layout is consistent by construction, and the check constraints, unique
indexes and the partial ``one_open_session_per_driver`` index are all enforced as usual).
Finishes with VACUUM ANALYZE so the benchmark does not pay for hint bits or stale statistics.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2.extras import execute_values

from bench.layout import SEED_VERSION, Layout

ROOT = Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres")
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def database_url(db: str) -> str:
    return f"{PG_URL}/{db}"


def connect(db: str):
    conn = psycopg2.connect(f"{PG_DSN} dbname={db}")
    conn.autocommit = True
    return conn


def django_env(db: str) -> dict:
    """The production-like environment the app is served and migrated with."""
    return {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url(db),
        "DJANGO_SETTINGS_MODULE": "parking_api.settings",
    }


def stored_layout(db: str) -> dict | None:
    """The layout a database was seeded with, or None if it is missing or incomplete."""
    try:
        conn = connect(db)
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('bench_meta') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT value FROM bench_meta WHERE key = 'layout'")
            row = cur.fetchone()
            return json.loads(row[0]) if row else None
    finally:
        conn.close()


def migrations(app_dir: Path) -> list[str]:
    """The project's migrations: a database seeded under other ones is not reused."""
    return sorted(str(p.relative_to(app_dir)) for p in app_dir.glob("*/migrations/0*.py"))


def layout_record(layout: Layout, app_dir: Path = ROOT) -> dict:
    return {
        "drivers": layout.drivers,
        "sessions": layout.sessions,
        "open": layout.open,
        "write_drivers": layout.write_drivers,
        "parkings": layout.parkings,
        "seed_version": SEED_VERSION,
        "migrations": migrations(app_dir),
    }


def recreate_database(db: str) -> None:
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{db}"')
    admin.close()


def drop_database(db: str) -> None:
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    admin.close()


def migrate(db: str, log, app_dir: Path = ROOT) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=app_dir,
        env=django_env(db),
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
        timeout=600,
    )


def _mac(ap_id: int) -> str:
    return ":".join(f"{byte:02X}" for byte in (0x02, 0x00, *ap_id.to_bytes(4, "big")))


def _parkings(layout: Layout) -> list[tuple]:
    rows = []
    for p in range(1, layout.parkings + 1):
        # Every 10th name is non-ASCII: the JSON must come out byte-identical (ensure_ascii off).
        name = f"Parcare Piața Unirii {p}" if p % 10 == 3 else f"Secured P {p}"
        rows.append(
            (
                p,
                name,
                "Underground, 2 levels",
                f"Strada Exemplu {p}, Cluj-Napoca",
                46.7 + p / 10000,
                23.5 + p / 10000,
                True,
                p % 10 == 0,
                "RON",
                layout.capacity,
                3,
                3,
            )
        )
    return rows


def _tariffs(layout: Layout) -> list[tuple]:
    rows = []
    for p in range(1, layout.parkings + 1):
        free = (0, 15, 30)[p % 3]
        period = (60, 30, 15, 1440)[p % 4]
        price = ("5.0000", "2.5000", "3.3333", "1.1250", "0.0000", "7.7750", "4.0050")[p % 7]
        cap = None if p % 5 == 0 else "40.00"
        rows.append((p, free, period, price, cap))
    return rows


def _access_points(layout: Layout) -> list[tuple]:
    """2-4 barriers a parking: all but the last are entrances, the last is the exit."""
    rows, ap_id = [], 0
    for p in range(1, layout.parkings + 1):
        count = 2 + p % 3
        for i in range(count):
            ap_id += 1
            direction = "exit" if i == count - 1 else "entrance"
            rows.append((ap_id, f"{direction} {i + 1}", direction, _mac(ap_id), p))
    return rows


PLAN_SQL = """
CREATE UNLOGGED TABLE bench_plan AS
WITH base AS (
    SELECT s, ((s - 1) %% %(drivers)s) + 1 AS driver, (s * 37) %% %(parkings)s + 1 AS parking,
           (s::bigint * 2654435761 %% 1000003) AS h,
           (s::bigint * 2654435761 %% 1000003 %% 997) / 1000.0 AS frac
    FROM generate_series(1, %(sessions)s) AS s
), kinds AS (
    SELECT base.*,
           CASE
             WHEN s >= %(latest_first)s AND driver <= %(open)s THEN
               CASE driver %% 20 WHEN 0 THEN 'exiting' WHEN 1 THEN 'entering' ELSE 'active' END
             WHEN s >= %(latest_first)s AND driver <= %(open)s + %(stale)s THEN 'stale'
             WHEN s %% 20 = 7 THEN 'cancelled'
             ELSE 'finished'
           END AS kind
    FROM base
), timed AS (
    SELECT kinds.*,
           CASE kind
             WHEN 'active' THEN %(t0)s - make_interval(secs => 1200 + h %% 259200 + frac)
             WHEN 'exiting' THEN %(t0)s - make_interval(secs => 3600 + h %% 172800 + frac)
             WHEN 'entering' THEN %(t0)s - make_interval(secs => 30 + h %% 60 + frac)
             WHEN 'stale' THEN %(t0)s - make_interval(secs => 172800 + h %% 86400)
             ELSE %(t0)s - make_interval(secs => 172800 + frac
                  + (%(sessions)s - s + 1)::float8 / %(sessions)s * 395 * 86400)
           END AS start_time
    FROM kinds
)
SELECT s, driver, parking, h, kind,
       CASE WHEN kind = 'stale' THEN 'entering' ELSE kind END AS state,
       start_time,
       CASE kind
         WHEN 'finished' THEN start_time + make_interval(mins => 10 + (h %% 600)::int)
         WHEN 'cancelled' THEN start_time + make_interval(secs => h %% 900)
       END AS end_time,
       CASE kind
         WHEN 'finished' THEN ((h %% 5000) / 100.0)::numeric(10, 2)
         WHEN 'exiting' THEN ((h %% 4000) / 100.0)::numeric(10, 2)
         ELSE 0
       END AS amount,
       CASE WHEN kind IN ('entering') THEN 1 + h %% 3 WHEN kind = 'stale' THEN 3 ELSE h %% 3 END
         AS entrance_tries,
       CASE WHEN kind = 'finished' THEN h %% 3 WHEN kind = 'exiting' THEN 1 + h %% 3 ELSE 3 END
         AS exit_tries,
       CASE kind
         WHEN 'active' THEN start_time + interval '30 seconds'
         WHEN 'exiting' THEN %(t0)s - make_interval(secs => h %% 600)
         ELSE start_time
       END AS key_start,
       CASE WHEN kind IN ('finished', 'exiting') THEN 'exit' ELSE 'entrance' END AS ap_direction
FROM timed
"""

LOAD_SQL = [
    # The mobile client, as seed_demo and the factories define it.
    """
    INSERT INTO oauth2_provider_application
        (id, client_id, redirect_uris, client_type, authorization_grant_type, client_secret, name,
         user_id, skip_authorization, created, updated, algorithm, post_logout_redirect_uris,
         hash_client_secret, allowed_origins, registration_source, cimd_expires_at)
    VALUES (1, 'parking-mobile-app', 'parkingapp://oauth/callback', 'public',
            'authorization-code', '', 'Parking mobile app', NULL, TRUE, %(t0)s, %(t0)s, '', '',
            FALSE, '', 'manual', NULL)
    """,
    # Drivers, and one operator for the admin (passwords unusable: nobody logs in with them).
    """
    INSERT INTO accounts_user (id, password, last_login, is_superuser, first_name, last_name,
                               is_staff, is_active, date_joined, email)
    SELECT d, '!', NULL::timestamptz, FALSE, '', '', FALSE, TRUE, %(t0)s - interval '400 days',
           'driver' || d || '@bench.example'
    FROM generate_series(1, %(drivers)s) AS d
    UNION ALL
    SELECT %(superuser)s, '!', NULL, TRUE, '', '', TRUE, TRUE, %(t0)s, 'operator@bench.example'
    """,
    # One valid access token a driver, stored hashed (DOT: token '' and the sha256 checksum).
    """
    INSERT INTO oauth2_provider_accesstoken (id, token, expires, scope, application_id, user_id,
        created, updated, source_refresh_token_id, id_token_id, token_checksum, resource)
    SELECT d, '', %(t0)s + interval '3650 days', 'driver', 1, d, %(t0)s, %(t0)s, NULL, NULL,
           encode(sha256(('bench-token-' || d)::bytea), 'hex'), '[]'::jsonb
    FROM generate_series(1, %(drivers)s) AS d
    """,
    """
    INSERT INTO smart_keys_smartkey (id, type, description, start_time, end_time, access_command,
                                     created_at, driver_id, secured_parking_id)
    SELECT p.s, 'session_access', 'Session access to ' || sp.name, p.key_start,
           CASE WHEN p.end_time IS NOT NULL THEN GREATEST(p.end_time, p.key_start)
                ELSE p.key_start + interval '15 minutes' END,
           translate(rtrim(encode(sha256(('cmd-' || p.s)::bytea), 'base64'), '='), '+/', '-_'),
           p.start_time, p.driver, p.parking
    FROM bench_plan p JOIN parking_securedparking sp ON sp.id = p.parking
    """,
    """
    INSERT INTO smart_keys_smartkey_access_points (smartkey_id, accesspoint_id)
    SELECT p.s, ap.id
    FROM bench_plan p
    JOIN smart_keys_accesspoint ap
      ON ap.secured_parking_id = p.parking AND ap.direction = p.ap_direction
    ORDER BY p.s, ap.id
    """,
    """
    INSERT INTO parking_parkingsession (id, type, state, start_time, end_time,
        entrance_remaining_tries, exit_remaining_tries, amount, currency, created_at, updated_at,
        driver_id, smart_key_id, secured_parking_id)
    SELECT s, 'pay_per_use', state, start_time, end_time, entrance_tries, exit_tries, amount,
           'RON', start_time, COALESCE(end_time, start_time), driver, s, parking
    FROM bench_plan
    """,
    "DROP TABLE bench_plan",
]

SEQUENCE_TABLES = [
    "accounts_user",
    "oauth2_provider_application",
    "oauth2_provider_accesstoken",
    "parking_securedparking",
    "smart_keys_accesspoint",
    "smart_keys_smartkey",
    "smart_keys_smartkey_access_points",
    "parking_parkingsession",
]

SEEDED_TABLES = [
    "oauth2_provider_application",
    "accounts_user",
    "oauth2_provider_accesstoken",
    "parking_securedparking",
    "parking_tariff",
    "smart_keys_accesspoint",
    "smart_keys_smartkey",
    "smart_keys_smartkey_access_points",
    "parking_parkingsession",
]


def model_defaults(db: str, app_dir: Path) -> dict[str, dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.inproc", "defaults", ",".join(SEEDED_TABLES)],
        cwd=app_dir,
        env=django_env(db) | {"PYTHONPATH": os.pathsep.join([str(app_dir), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reading the models' defaults failed: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def borrow_defaults(cur, defaults: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """Columns this seed does not know (added by later migrations) get their Django default
    as a database default while loading; returns what to drop afterwards."""
    cur.execute(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ANY(%s) AND is_nullable = 'NO'
          AND column_default IS NULL AND is_identity = 'NO'
        """,
        (SEEDED_TABLES,),
    )
    borrowed = []
    for table, column in cur.fetchall():
        literal = defaults.get(table, {}).get(column)
        if literal is not None:
            cur.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT {literal}')
            borrowed.append((table, column))
    return borrowed


# The parking list reads each parking's count of parked cars (parking.ParkingOccupancy),
# which the services keep as sessions change; after bulk loads and deletes it is set from the
# sessions. Older commits served with --app-ref have no such table.
OCCUPANCY_SQL = """
INSERT INTO parking_parkingoccupancy (secured_parking_id, parked)
SELECT sp.id, (SELECT count(*) FROM parking_parkingsession s
               WHERE s.secured_parking_id = sp.id AND s.state IN ('active', 'exiting'))
FROM parking_securedparking sp
ON CONFLICT (secured_parking_id) DO UPDATE SET parked = EXCLUDED.parked
"""


def count_parked_cars(cur) -> None:
    cur.execute("SELECT to_regclass('parking_parkingoccupancy') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute(OCCUPANCY_SQL)
        cur.execute("ANALYZE parking_parkingoccupancy")


def load(conn, layout: Layout, app_dir: Path = ROOT, defaults: dict | None = None) -> None:
    params = {
        "drivers": layout.drivers,
        "sessions": layout.sessions,
        "open": layout.open,
        "stale": layout.stale,
        "parkings": layout.parkings,
        "latest_first": layout.latest_first,
        "superuser": layout.superuser_id,
    }
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("SELECT date_trunc('second', now())")
        params["t0"] = cur.fetchone()[0]
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # Foreign-key triggers off while loading (the layout is consistent by construction);
        # CHECK constraints and unique indexes, the partial one included, still apply.
        cur.execute("SET LOCAL session_replication_role = replica")
        borrowed = borrow_defaults(cur, defaults or {})
        execute_values(
            cur,
            "INSERT INTO parking_securedparking (id, name, description, address, latitude,"
            " longitude, is_active, is_online, currency, capacity, entrance_tries, exit_tries,"
            " charges_by_card, created_at, updated_at) VALUES %s",
            # No card payments unless the write path's paid variant turns them on
            # (set_charging): the read rounds and the unpaid write path need no Stripe.
            [row + (False, params["t0"], params["t0"]) for row in _parkings(layout)],
        )
        execute_values(
            cur,
            "INSERT INTO parking_tariff (secured_parking_id, free_minutes, period_minutes,"
            " price_per_period, daily_cap) VALUES %s",
            _tariffs(layout),
        )
        execute_values(
            cur,
            "INSERT INTO smart_keys_accesspoint (id, name, direction, mac_address,"
            " secured_parking_id, created_at) VALUES %s",
            [row + (params["t0"],) for row in _access_points(layout)],
        )
        cur.execute(PLAN_SQL, params)
        for statement in LOAD_SQL:
            cur.execute(statement, params)
        count_parked_cars(cur)
        for table, column in borrowed:
            cur.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP DEFAULT')
        for table in SEQUENCE_TABLES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
            )
        cur.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        cur.execute(
            "INSERT INTO bench_meta VALUES ('layout', %s), ('t0', %s)",
            (json.dumps(layout_record(layout, app_dir)), params["t0"].isoformat()),
        )
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in SEEDED_TABLES:
            cur.execute(f"VACUUM (ANALYZE) {table}")


def check_integrity(conn, layout: Layout) -> dict:
    """Counts that prove the layout landed as designed, and that no foreign key dangles."""
    queries = {
        "sessions": "SELECT count(*) FROM parking_parkingsession",
        "open_sessions": "SELECT count(*) FROM parking_parkingsession"
        " WHERE state IN ('entering', 'active', 'exiting')"
        " AND NOT (state = 'entering' AND start_time <= now() - interval '15 minutes')",
        "stale_entering": "SELECT count(*) FROM parking_parkingsession"
        " WHERE state = 'entering' AND start_time <= now() - interval '15 minutes'",
        "drivers": "SELECT count(*) FROM accounts_user WHERE NOT is_staff",
        "tokens": "SELECT count(*) FROM oauth2_provider_accesstoken",
        "access_points": "SELECT count(*) FROM smart_keys_accesspoint",
        "key_access_points": "SELECT count(*) FROM smart_keys_smartkey_access_points",
        "dangling_fks": """
            SELECT (SELECT count(*) FROM parking_parkingsession s
                    LEFT JOIN smart_keys_smartkey k ON k.id = s.smart_key_id WHERE k.id IS NULL)
                 + (SELECT count(*) FROM parking_parkingsession s
                    LEFT JOIN accounts_user u ON u.id = s.driver_id WHERE u.id IS NULL)
                 + (SELECT count(*) FROM smart_keys_smartkey_access_points m
                    LEFT JOIN smart_keys_accesspoint a ON a.id = m.accesspoint_id
                    WHERE a.id IS NULL)
        """,
    }
    result = {}
    with conn.cursor() as cur:
        for name, sql in queries.items():
            cur.execute(sql)
            result[name] = cur.fetchone()[0]
    expected = {
        "sessions": layout.sessions,
        "open_sessions": layout.open,
        "stale_entering": layout.stale,
        "drivers": layout.drivers,
        "tokens": layout.drivers,
        "dangling_fks": 0,
    }
    wrong = {k: (result[k], v) for k, v in expected.items() if result[k] != v}
    if wrong:
        raise RuntimeError(f"seeded data does not match the layout (got, expected): {wrong}")
    return result


# PostgreSQL's planner settings for the benchmark databases, for every connection to them
# (project and floors alike). The default random_page_cost (4) models spinning disks; with
# it the planner hashes all access points of a small database instead of looking up the
# key's three, so the small database answered slower than the large one. 1.1 is the
# documented value for SSDs and for data that fits in memory, as here and in production.
PLANNER_SETTINGS = {"random_page_cost": "1.1"}


def tune_planner(db: str) -> dict[str, str]:
    conn = connect(db)
    try:
        with conn.cursor() as cur:
            for name, value in PLANNER_SETTINGS.items():
                cur.execute(f"ALTER DATABASE {db} SET {name} = {value}")
    finally:
        conn.close()
    return dict(PLANNER_SETTINGS)


def refresh_entering(db: str, layout: Layout) -> None:
    """Fresh ``entering`` sessions go stale 15 minutes after they start: move them to now
    before each measurement so the 200/404 mix stays as designed for the whole run."""
    conn = connect(db)
    with conn.cursor() as cur:
        cur.execute(
            """
            WITH moved AS (
                UPDATE parking_parkingsession
                SET start_time = now() - make_interval(secs => 30 + id %% 60),
                    created_at = now() - make_interval(secs => 30 + id %% 60),
                    updated_at = now() - make_interval(secs => 30 + id %% 60)
                WHERE state = 'entering' AND driver_id <= %s AND id <= %s
                RETURNING smart_key_id, start_time
            )
            UPDATE smart_keys_smartkey k
            SET start_time = moved.start_time, end_time = moved.start_time + interval '15 minutes'
            FROM moved WHERE k.id = moved.smart_key_id
            """,
            (layout.open, layout.sessions),
        )
    conn.close()


REFERENCES_SQL = """
SELECT c.conrelid::regclass::text, a.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND c.confrelid = %s::regclass
"""


def remove_written_sessions(db: str, layout: Layout) -> int:
    """Undo the write-path benchmark: drop every session and key created after the seed,
    with whatever rows the project wrote about them (access logs, audit entries, …)."""
    conn = connect(db)
    conn.autocommit = False
    with conn.cursor() as cur:
        for parent in ("parking_parkingsession", "smart_keys_smartkey"):
            cur.execute(REFERENCES_SQL, (parent,))
            for table, column in cur.fetchall():
                if table not in ("parking_parkingsession", "smart_keys_smartkey"):
                    cur.execute(f'DELETE FROM {table} WHERE "{column}" > %s', (layout.sessions,))
        cur.execute("DELETE FROM parking_parkingsession WHERE id > %s", (layout.sessions,))
        removed = cur.rowcount
        cur.execute("DELETE FROM smart_keys_smartkey WHERE id > %s", (layout.sessions,))
        cur.execute("DELETE FROM parking_idempotencyrecord")
        # The paid variant's payments (the seed writes none); the drivers keep their cards.
        cur.execute(REFERENCES_SQL, ("payments_payment",))
        for table, column in cur.fetchall():
            cur.execute(f'DELETE FROM {table} WHERE "{column}" IS NOT NULL')
        cur.execute("DELETE FROM payments_payment")
        count_parked_cars(cur)
    conn.commit()
    conn.close()
    return removed


def set_charging(db: str, charging: bool) -> None:
    """Every parking charges by card (the paid write path), or none does."""
    conn = connect(db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("UPDATE parking_securedparking SET charges_by_card = %s", (charging,))
    conn.close()


def payment_states(db: str) -> dict[str, int]:
    """Payments by state, and the background jobs not done yet."""
    conn = connect(db)
    with conn.cursor() as cur:
        cur.execute("SELECT state, count(*) FROM payments_payment GROUP BY state ORDER BY 1")
        states = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
        states["jobs_pending"] = cur.fetchone()[0]
    conn.close()
    return states


def seed(db: str, layout: Layout, log, app_dir: Path = ROOT) -> dict:
    layout.validate()
    started = time.monotonic()
    recreate_database(db)
    migrate(db, log, app_dir)
    defaults = model_defaults(db, app_dir)
    migrated = time.monotonic()
    conn = connect(db)
    try:
        load(conn, layout, app_dir, defaults)
        counts = check_integrity(conn, layout)
    finally:
        conn.close()
    return {
        "db": db,
        "seconds": round(time.monotonic() - started, 1),
        "migrate_seconds": round(migrated - started, 1),
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="parking_bench")
    parser.add_argument("--drivers", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--write-drivers", type=int, default=2_000)
    args = parser.parse_args()
    layout = Layout(args.drivers, args.sessions, args.open, args.write_drivers)
    print(json.dumps(seed(args.db, layout, sys.stderr), indent=2))


if __name__ == "__main__":
    main()
