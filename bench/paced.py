"""Open-loop load at a fixed request rate, to compare latency at the same load.

wrk is closed-loop, and its pacing (``delay()``) connects first and waits afterwards: a sync
gunicorn worker accepts the idle connection and blocks on it, so requests on the other
connections queue behind nothing. Here each request is sent at its scheduled time on a fresh
connection (gunicorn's sync workers close every connection anyway), from a pool of threads
large enough that a slow answer does not delay the next send, and latency is counted from
the scheduled time, so time spent queueing because the server fell behind is included.
"""

import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CURRENT = "/api/car_driver/parking_sessions/current"


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(port: int, tokens_file: Path, rate: float, duration: float, threads: int = 48) -> dict:
    tokens = tokens_file.read_text().split()
    lock = threading.Lock()
    latencies: list[float] = []
    lateness: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]

    def one(due: float, token: str) -> None:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", CURRENT, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            conn.close()
            status = response.status
        except OSError:
            with lock:
                errors[0] += 1
            return
        finished = time.perf_counter()
        with lock:
            latencies.append((finished - due) * 1000)
            lateness.append((started - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    count = int(rate * duration)
    interval = 1.0 / rate
    with ThreadPoolExecutor(max_workers=threads) as pool:
        begin = time.perf_counter() + 0.05
        for i in range(count):
            due = begin + i * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(one, due, tokens[i % len(tokens)])
    elapsed = time.perf_counter() - begin
    done = len(latencies)
    return {
        "rps": done / elapsed,
        "requests": done,
        "p50_ms": _percentile(latencies, 50) if done else float("nan"),
        "p90_ms": _percentile(latencies, 90) if done else float("nan"),
        "p99_ms": _percentile(latencies, 99) if done else float("nan"),
        "max_ms": max(latencies, default=float("nan")),
        "client_late_p99_ms": _percentile(lateness, 99) if done else float("nan"),
        "share_404": statuses.get(404, 0) / max(1, done),
        "statuses": statuses,
        "errors": errors[0] + sum(v for k, v in statuses.items() if k not in (200, 404)),
    }
