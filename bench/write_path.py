"""The write path under concurrency: ``POST parking_sessions`` then ``POST …/entrance_try``.

Each worker thread takes drivers without an open session from a queue, starts a session at
a parking (spread over all of them, so starts contend on parking row locks only now and then)
and spends one entrance try, like a phone at the barrier. Any status other than 201 then 200
counts as an error.
"""

import http.client
import json
import queue
import threading
import time

from bench.layout import Layout, raw_token


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _post(port: int, path: str, token: str, body: bytes | None) -> tuple[int, bytes, float]:
    headers = {"Authorization": f"Bearer {token}", "Host": "127.0.0.1"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body or b"", headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, data, (time.perf_counter() - started) * 1000


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.start_ms: list[float] = []
        self.try_ms: list[float] = []
        self.unexpected: dict[str, int] = {}
        self.examples: list[str] = []
        self.pairs = 0

    def error(self, step: str, status: int, data: bytes) -> None:
        with self.lock:
            key = f"{step} {status}"
            self.unexpected[key] = self.unexpected.get(key, 0) + 1
            if len(self.examples) < 5:
                self.examples.append(f"{key}: {data[:300]!r}")

    def success(self, start_ms: float, try_ms: float) -> None:
        with self.lock:
            self.start_ms.append(start_ms)
            self.try_ms.append(try_ms)
            self.pairs += 1


def _journey(port: int, driver_id: int, layout: Layout, stats: _Stats) -> None:
    """One driver at the entrance: start a session, then spend an entrance try."""
    token = raw_token(driver_id)
    body = json.dumps({"secured_parking_id": driver_id % layout.parkings + 1}).encode()
    try:
        status, data, start_ms = _post(port, "/api/car_driver/parking_sessions", token, body)
    except OSError as error:
        return stats.error("start", 0, str(error).encode())
    if status != 201:
        return stats.error("start", status, data)
    session_id = json.loads(data)["parking_session"]["id"]
    path = f"/api/car_driver/parking_sessions/{session_id}/entrance_try"
    try:
        status, data, try_ms = _post(port, path, token, None)
    except OSError as error:
        return stats.error("entrance_try", 0, str(error).encode())
    if status != 200:
        return stats.error("entrance_try", status, data)
    stats.success(start_ms, try_ms)


def run(port: int, layout: Layout, concurrency: int, deadline_s: float) -> dict:
    drivers: queue.SimpleQueue[int] = queue.SimpleQueue()
    for driver_id in layout.writers():
        drivers.put(driver_id)
    stats = _Stats()
    stop_at = time.monotonic() + deadline_s

    def worker() -> None:
        while time.monotonic() < stop_at:
            try:
                driver_id = drivers.get_nowait()
            except queue.Empty:
                return
            _journey(port, driver_id, layout, stats)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at - time.monotonic() + 35))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "drivers": layout.write_drivers,
        "pairs_ok": stats.pairs,
        "seconds": round(elapsed, 2),
        "sessions_per_s": round(stats.pairs / elapsed, 1) if elapsed else 0.0,
        "errors": sum(stats.unexpected.values()),
        "unexpected": stats.unexpected,
        "examples": stats.examples,
        "start_p50_ms": round(_percentile(stats.start_ms, 50), 2),
        "start_p99_ms": round(_percentile(stats.start_ms, 99), 2),
        "try_p50_ms": round(_percentile(stats.try_ms, 50), 2),
        "try_p99_ms": round(_percentile(stats.try_ms, 99), 2),
    }
