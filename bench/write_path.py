"""The write path under concurrency: a driver's whole stay, start to finish.

Each worker thread takes drivers without an open session from a queue and walks one through
``POST parking_sessions`` (at a parking spread over all of them, so starts contend on
parking row locks only now and then), ``POST …/entrance_try`` (the phone at the barrier),
``…/enter``, ``…/exit`` and ``…/finalize``. Any status other than 201 for the start and 200
for the other steps counts as an error, and the journey stops there.
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


STEPS = ("start", "entrance_try", "enter", "exit", "finalize")


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = {step: [] for step in STEPS}
        self.unexpected: dict[str, int] = {}
        self.examples: list[str] = []
        self.journeys = 0

    def error(self, step: str, status: int, data: bytes) -> None:
        with self.lock:
            key = f"{step} {status}"
            self.unexpected[key] = self.unexpected.get(key, 0) + 1
            if len(self.examples) < 5:
                self.examples.append(f"{key}: {data[:300]!r}")

    def success(self, ms: dict[str, float]) -> None:
        with self.lock:
            for step, value in ms.items():
                self.ms[step].append(value)
            self.journeys += 1


def _journey(port: int, driver_id: int, layout: Layout, stats: _Stats) -> None:
    """One driver's stay: start a session, try the entrance, enter, head out, finish."""
    token = raw_token(driver_id)
    body = json.dumps({"secured_parking_id": driver_id % layout.parkings + 1}).encode()
    sessions = "/api/car_driver/parking_sessions"
    ms: dict[str, float] = {}
    session_id = None
    for step in STEPS:
        path = sessions if step == "start" else f"{sessions}/{session_id}/{step}"
        try:
            status, data, ms[step] = _post(port, path, token, body if step == "start" else None)
        except OSError as error:
            return stats.error(step, 0, str(error).encode())
        if status != (201 if step == "start" else 200):
            return stats.error(step, status, data)
        if step == "start":
            session_id = json.loads(data)["parking_session"]["id"]
    stats.success(ms)


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
        "journeys_ok": stats.journeys,
        "seconds": round(elapsed, 2),
        "sessions_per_s": round(stats.journeys / elapsed, 1) if elapsed else 0.0,
        "requests_per_s": round(stats.journeys * len(STEPS) / elapsed, 1) if elapsed else 0.0,
        "errors": sum(stats.unexpected.values()),
        "unexpected": stats.unexpected,
        "examples": stats.examples,
        "steps": {
            step: {
                "p50_ms": round(_percentile(values, 50), 2),
                "p99_ms": round(_percentile(values, 99), 2),
            }
            for step, values in stats.ms.items()
        },
    }
