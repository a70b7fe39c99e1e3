"""Measurements that need the project in-process (Django test Client, production settings).

    python -m bench.inproc queries SAMPLE_JSON   # queries per GET current, project and floor
    python -m bench.inproc endpoints SAMPLE_JSON # queries per request of each driver endpoint
    python -m bench.inproc admin SUPERUSER_ID,P,Q  # admin session list: queries, time per page
    python -m bench.inproc defaults TABLE,…      # Django defaults of columns, as SQL literals

Run by bench.run with DJANGO_DEBUG=0 and DATABASE_URL pointing at the benchmark database;
prints one JSON document. Requests go through the whole middleware stack, so the connection
handling is production's (CONN_MAX_AGE, CONN_HEALTH_CHECKS).

Two counts per request: ``orm`` is what ``CaptureQueriesContext`` sees (the project's queries),
``statements`` is every statement sent on the wire, counted by a cursor factory on psycopg's
connection: it adds what Django runs behind its own back, e.g. the ``SELECT 1`` of
CONN_HEALTH_CHECKS.
"""

import functools
import json
import os
import re
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parking_api.settings")
django.setup()

from django.db import close_old_connections, connection  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

CURRENT = "/api/car_driver/parking_sessions/current"
STATEMENTS = [0]


@functools.cache
def _counting(cursor_class: type) -> type:
    """``cursor_class`` (the one Django gave psycopg's connection), counting statements."""

    class CountingCursor(cursor_class):
        def execute(self, *args, **kwargs):
            STATEMENTS[0] += 1
            return super().execute(*args, **kwargs)

        def executemany(self, *args, **kwargs):
            STATEMENTS[0] += 1
            return super().executemany(*args, **kwargs)

    return CountingCursor


def _count_statements(sender, connection, **kwargs) -> None:
    raw = connection.connection
    raw.cursor_factory = _counting(raw.cursor_factory)


connection_created.connect(_count_statements)


def _summary(values: list[int]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(statistics.mean(values), 2),
        "max": max(values),
        "min": min(values),
    }


def _project_counts(client: Client, sample: list[dict]) -> tuple[dict, list[str] | None]:
    """Queries and statements per request of each ``{"token", "path"?}`` (default: current),
    by status; and the SQL of the first 200."""
    by_status: dict[str, dict[str, list[int]]] = {}
    example = None
    for item in sample:
        before = STATEMENTS[0]
        # The test Client mutes request_started's close_old_connections, which a real server
        # runs before every request (and with it the CONN_HEALTH_CHECKS ping): do it here.
        close_old_connections()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(
                item.get("path", CURRENT), HTTP_AUTHORIZATION=f"Bearer {item['token']}"
            )
        bucket = by_status.setdefault(str(response.status_code), {"orm": [], "statements": []})
        bucket["orm"].append(len(captured.captured_queries))
        bucket["statements"].append(STATEMENTS[0] - before)
        if response.status_code == 200 and example is None:
            example = [q["sql"] for q in captured.captured_queries]
    project = {status: {k: _summary(v) for k, v in b.items()} for status, b in by_status.items()}
    return project, example


def measure_queries(sample_path: str) -> dict:
    sample = json.load(open(sample_path))
    client = Client(HTTP_HOST="127.0.0.1")
    client.get(CURRENT, HTTP_AUTHORIZATION=f"Bearer {sample[0]['token']}")  # connect first
    project, example = _project_counts(client, sample)
    return {"project": project, "project_example_sql": example, "floor": measure_floor(sample)}


def measure_endpoints(sample_path: str) -> dict:
    """``{endpoint: [{"token", "path"}, …]}`` → queries and statements per request, by status.
    Each endpoint is asked once before it is counted, so its statements are prepared."""
    client = Client(HTTP_HOST="127.0.0.1")
    result = {}
    for name, sample in json.load(open(sample_path)).items():
        client.get(sample[0]["path"], HTTP_AUTHORIZATION=f"Bearer {sample[0]['token']}")
        result[name] = _project_counts(client, sample)[0]
    return result


def measure_floor(sample: list[dict]) -> dict:
    from bench import floor

    def get(token: str) -> str:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": CURRENT,
            "HTTP_AUTHORIZATION": f"Bearer {token}",
        }
        seen: list[str] = []
        floor.application(environ, lambda status, headers, seen=seen: seen.append(status))
        return seen[0].split()[0]

    get(sample[0]["token"])  # connect (and prepare) first, as for the project
    by_status: dict[str, list[int]] = {}
    for item in sample:
        before = floor.queries
        status = get(item["token"])
        by_status.setdefault(status, []).append(floor.queries - before)
    return {status: {"statements": _summary(v)} for status, v in by_status.items()}


FULL_COUNT = re.compile(r'^SELECT COUNT\(\*\) AS "__count" FROM "parking_parkingsession"$')


def _page(client: Client, url: str, runs: int = 3) -> dict:
    client.get(url)  # warm up (template loading, first connection)
    walls, sql_ms, counts, captured_last = [], [], [], None
    for _ in range(runs):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        walls.append((time.perf_counter() - started) * 1000)
        sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        counts.append(len(captured.captured_queries))
        captured_last = captured.captured_queries
    slowest = max(captured_last, key=lambda q: float(q["time"]), default=None)
    count_queries = [q["sql"] for q in captured_last if "COUNT(" in q["sql"].upper()]
    return {
        "url": url,
        "status": response.status_code,
        "queries": max(counts),
        "wall_ms": round(statistics.median(walls), 1),
        "sql_ms": round(statistics.median(sql_ms), 1),
        "count_queries": len(count_queries),
        "full_table_count": any(FULL_COUNT.match(sql.strip()) for sql in count_queries),
        "slowest_sql_ms": round(float(slowest["time"]) * 1000, 1) if slowest else None,
        "slowest_sql": slowest["sql"][:4000] if slowest else None,
        "all_sql": [
            {"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:4000]} for q in captured_last
        ],
    }


def measure_admin(argument: str) -> dict:
    """``argument``: superuser id, a later page of the whole list, a later page of ``active``."""
    from django.contrib.auth import get_user_model

    superuser_id, later, later_active = (int(x) for x in argument.split(","))
    base = "/admin/parking/parkingsession/"
    pages = [
        base,
        f"{base}?p={later}",
        f"{base}?state__exact=active",
        f"{base}?state__exact=active&p={later_active}",
    ]
    # collectstatic is not part of the benchmark: plain static storage instead of the manifest.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(get_user_model().objects.get(pk=superuser_id))
        return {"pages": [_page(client, url) for url in pages]}


def model_defaults(tables: str) -> dict:
    """Python-side defaults of the seeded tables' columns, as SQL literals, so the SQL seed
    keeps working when a migration adds a NOT NULL column with a Django ``default``."""
    from django.apps import apps

    wanted = set(tables.split(","))
    result: dict[str, dict[str, str]] = {}
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        if table not in wanted:
            continue
        for field in model._meta.concrete_fields:
            if not field.has_default() or field.null:
                continue
            value = field.get_db_prep_save(field.get_default(), connection)
            result.setdefault(table, {})[field.column] = connection.ops.compose_sql("%s", [value])
    return result


def main() -> None:
    command, argument = sys.argv[1], sys.argv[2]
    if command == "defaults":
        result = model_defaults(argument)
    elif command == "queries":
        result = measure_queries(argument)
    elif command == "endpoints":
        result = measure_endpoints(argument)
    elif command == "admin":
        result = measure_admin(argument)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
