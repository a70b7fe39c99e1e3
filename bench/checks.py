"""Checks over HTTP before anything is timed: the floor answers exactly like the project, and the
project keeps the behaviours an optimisation could break (revocation, expiry, ownership, …)."""

import http.client
import json

from bench.layout import Layout, raw_token
from bench.seed import connect

CURRENT = "/api/car_driver/parking_sessions/current"
COMPARED_HEADERS = ("content-type", "cache-control", "www-authenticate", "content-language", "vary")
VOLATILE_HEADERS = {"date", "server", "connection", "content-length", "x-request-id"}


def get(port: int, path: str, token: str | None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": "127.0.0.1"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def error_style(port: int, layout: Layout) -> str:
    """Which error envelope the project answers with, so the floor can match it byte for byte."""
    _, body, _ = get(port, CURRENT, raw_token(layout.open + 1))
    data = json.loads(body)
    return "standardized" if isinstance(data, dict) and "errors" in data else "drf"


def identity_sample(layout: Layout) -> list[tuple[str, str]]:
    """(token, kind) pairs covering every state, both kinds of 404 and an unknown token."""
    sample: list[tuple[str, str]] = []
    wanted = {"active": 40, "exiting": 15, "entering": 15}
    for driver_id in range(1, layout.open + 1):
        state = layout.open_state(driver_id)
        if wanted.get(state, 0) > 0:
            wanted[state] -= 1
            sample.append((raw_token(driver_id), state))
    stale = range(layout.open + 1, layout.open + layout.stale + 1)
    closed = range(layout.open + layout.stale + 1, layout.open + layout.no_session_readers + 1)
    sample += [(raw_token(d), "404 stale entering") for d in list(stale)[:10]]
    sample += [(raw_token(d), "404 none open") for d in list(closed)[:10]]
    sample += [("not-a-bench-token", "401 unknown"), (raw_token(10**9), "401 unknown")]
    return sample


def _differences(project, floor) -> list[str]:
    (p_status, p_body, p_headers), (f_status, f_body, f_headers) = project, floor
    problems = []
    if p_status != f_status:
        problems.append(f"status {p_status} != {f_status}")
    if p_body != f_body:
        problems.append(f"body\n  project {p_body[:400]!r}\n  floor   {f_body[:400]!r}")
    for name in COMPARED_HEADERS:
        if p_headers.get(name) != f_headers.get(name):
            problems.append(f"header {name}: {p_headers.get(name)!r} != {f_headers.get(name)!r}")
    return problems


def identity(project_port: int, floor_port: int, layout: Layout) -> dict:
    """Compare full answers. The amount moves with the clock, so a mismatch is retried: the
    floor must equal the project's answer just before or just after it."""
    mismatches, kinds, header_names = [], {}, set()
    for token, kind in identity_sample(layout):
        kinds[kind] = kinds.get(kind, 0) + 1
        for _ in range(3):
            before = get(project_port, CURRENT, token)
            floor = get(floor_port, CURRENT, token)
            after = get(project_port, CURRENT, token)
            problems = _differences(before, floor)
            if problems and _differences(after, floor):
                continue
            extra = (set(before[2]) ^ set(floor[2])) - VOLATILE_HEADERS
            header_names |= extra
            break
        else:
            mismatches.append({"kind": kind, "token": token, "problems": problems})
    return {
        "compared": sum(kinds.values()),
        "kinds": kinds,
        "mismatches": mismatches,
        "ok": not mismatches,
        "header_names_differing": sorted(header_names),
    }


def _statuses(port: int, token: str, path: str = CURRENT, times: int = 6) -> list[int]:
    # Several requests, so both gunicorn workers answer (a per-worker cache would show).
    return [get(port, path, token)[0] for _ in range(times)]


def behaviours(port: int, layout: Layout, db: str, *, project: bool) -> dict:
    """Changes made in the database must show on the very next request."""
    driver_id = 3  # an ``active`` driver in every layout
    token = raw_token(driver_id)
    results = {}
    conn = connect(db)
    cur = conn.cursor()
    try:
        cur.execute(
            "SELECT id FROM parking_parkingsession WHERE driver_id = %s AND state = 'active'",
            (driver_id,),
        )
        own_session = cur.fetchone()[0]
        status, body, _ = get(port, CURRENT, token)
        results["owner sees own session"] = (
            status == 200 and json.loads(body)["parking_session"]["id"] == own_session
        )
        _statuses(port, token)  # let every worker see the token first

        cur.execute(
            "DELETE FROM oauth2_provider_accesstoken WHERE user_id = %s RETURNING *", (driver_id,)
        )
        row, columns = cur.fetchone(), [c.name for c in cur.description]
        results["revoked token: 401 at once"] = set(_statuses(port, token)) == {401}
        placeholders = ", ".join(["%s"] * len(columns))
        cur.execute(
            f"INSERT INTO oauth2_provider_accesstoken ({', '.join(columns)})"
            f" VALUES ({placeholders})",
            [json.dumps(v) if c == "resource" else v for c, v in zip(columns, row, strict=True)],
        )

        cur.execute(
            "SELECT expires FROM oauth2_provider_accesstoken WHERE user_id = %s", (driver_id,)
        )
        old_expires = cur.fetchone()[0]
        cur.execute(
            "UPDATE oauth2_provider_accesstoken SET expires = now() - interval '1 second'"
            " WHERE user_id = %s",
            (driver_id,),
        )
        results["expired token: 401 at once"] = set(_statuses(port, token)) == {401}
        cur.execute(
            "UPDATE oauth2_provider_accesstoken SET expires = %s WHERE user_id = %s",
            (old_expires, driver_id),
        )

        cur.execute("UPDATE accounts_user SET is_active = false WHERE id = %s", (driver_id,))
        results["deactivated driver: 401 at once"] = set(_statuses(port, token)) == {401}
        cur.execute("UPDATE accounts_user SET is_active = true WHERE id = %s", (driver_id,))

        cur.execute(
            "UPDATE parking_parkingsession SET state = 'finished', end_time = now() WHERE id = %s",
            (own_session,),
        )
        results["session finished elsewhere: 404 at once"] = set(_statuses(port, token)) == {404}
        cur.execute(
            "UPDATE parking_parkingsession SET state = 'active', end_time = NULL WHERE id = %s",
            (own_session,),
        )
        results["restored: 200 again"] = set(_statuses(port, token)) == {200}

        if project:
            cur.execute(
                "SELECT id FROM parking_parkingsession WHERE driver_id <> %s LIMIT 1", (driver_id,)
            )
            other = cur.fetchone()[0]
            path = f"/api/car_driver/parking_sessions/{other}"
            results["another driver's session: 404"] = set(_statuses(port, token, path, 2)) == {404}
    finally:
        cur.close()
        conn.close()
    return {"checks": results, "ok": all(results.values())}
