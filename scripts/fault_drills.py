"""Fault drills against a real gunicorn + PostgreSQL, under load.

    python scripts/fault_drills.py db-outage   # stop PostgreSQL mid-load, start it again
    python scripts/fault_drills.py restarts    # SIGHUP twice, then SIGTERM, mid-load
    python scripts/fault_drills.py redis-outage  # stop the throttle's Redis, start it again

Each drill creates its own database (``parking_drill``), serves the app with the project's
gunicorn.conf.py (2 sync workers, DEBUG off), drives it from threads, and prints what it
counted. It exits non-zero when an invariant breaks: a 5xx other than 503, a lost or
duplicated session, an accepted request without an answer, or no recovery (for Redis:
the rate limit not working again within a second of Redis answering).

The drills run against a PostgreSQL cluster of their own ("drill", port 5433, created on
first use with Debian's pg_createcluster, stopped when the drill ends), so stopping it
disturbs nothing else.
"""

import argparse
import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "parking_drill"
PG_CLUSTER = "drill"
PG_PORT = 5433
# The redis-outage drill stops no PostgreSQL: it uses the local server, in a database of
# its own.
REDIS_DRILL_PG = (5432, "parking_drill_redis")
GUNICORN_LOG = open(os.environ.get("DRILL_GUNICORN_LOG", os.devnull), "a")  # noqa: SIM115
DRILL_CONFIG = ROOT / "scripts" / "drill_gunicorn.conf.py"
ACCEPTED_LOG = Path("/tmp/parking_drill_accepted.log")
PIDFILE = Path("/tmp/parking_drill_gunicorn.pid")
DRIVERS = 40
READERS = 6
WRITERS = 6


def pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


def pg_ctl(action: str) -> None:
    options = ["-m", "fast"] if action == "stop" else []
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), PG_CLUSTER, action, *options],
        check=True,
    )


def pg_answers() -> bool:
    result = subprocess.run(
        ["pg_isready", "--host", "127.0.0.1", "--port", str(PG_PORT), "--timeout", "1"],
        capture_output=True,
    )
    return result.returncode == 0


def ensure_drill_cluster() -> None:
    """A PostgreSQL cluster only the drills use, trusting local connections like CI's."""
    if not Path(f"/etc/postgresql/{pg_version()}/{PG_CLUSTER}").exists():
        subprocess.run(
            ["pg_createcluster", pg_version(), PG_CLUSTER, "--port", str(PG_PORT),
             "--", "--auth=trust"],
            check=True, capture_output=True,
        )  # fmt: skip
    if not pg_answers():
        pg_ctl("start")
    while not pg_answers():
        time.sleep(0.2)


def app_environment(pg: tuple[int, str] = (PG_PORT, DATABASE)) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "fault-drill-secret-key-not-for-production-use-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg[0]}/{pg[1]}",
        "API_THROTTLE_DRIVER_RATE": "100000/min",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DRILL_ACCEPTED_LOG": str(ACCEPTED_LOG),
    }


def prepare_database(pg: tuple[int, str] = (PG_PORT, DATABASE)) -> list[tuple[int, str]]:
    """A fresh database with drivers, their tokens and a big parking; returns (id, token)."""
    env = app_environment(pg)
    ACCEPTED_LOG.write_text("")
    port, database = pg
    if port == PG_PORT:
        ensure_drill_cluster()
    server = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    subprocess.run(["dropdb", *server, "--if-exists", database], check=True)
    subprocess.run(["createdb", *server, database], check=True)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env)
    script = f"""
import json, secrets
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value
from accounts.models import User
from parking.models import SecuredParking, Tariff
from smart_keys.models import AccessPoint
app = Application.objects.create(name="drill", client_id="drill", client_type="public",
    authorization_grant_type="authorization-code", redirect_uris="https://drill.invalid/cb",
    client_secret="", hash_client_secret=False, algorithm="")
parking = SecuredParking.objects.create(name="Drill P", capacity=10000)
Tariff.objects.create(secured_parking=parking, price_per_period=Decimal("5.00"))
AccessPoint.objects.create(secured_parking=parking, direction="entrance",
    mac_address="02:00:00:00:00:01")
AccessPoint.objects.create(secured_parking=parking, direction="exit",
    mac_address="02:00:00:00:00:02")
out = []
for n in range({DRIVERS}):
    user = User.objects.create_user(email=f"drill{{n}}@example.com", password=None)
    raw = secrets.token_urlsafe(30)
    token = AccessToken(user=user, application=app, scope="driver",
                        expires=timezone.now() + timedelta(hours=2))
    set_token_value(token, raw)
    token.save()
    out.append([user.pk, raw])
print(json.dumps({{"parking": parking.pk, "drivers": out}}))
"""
    result = subprocess.run([*manage, "shell", "-c", script], check=True, env=env,
                            capture_output=True, text=True)  # fmt: skip
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["parking"], [tuple(d) for d in data["drivers"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "parking_api.wsgi",
        *("-c", str(DRILL_CONFIG), "--bind", f"127.0.0.1:{port}", "--workers", "2"),
        *("--graceful-timeout", "20", "--pid", str(PIDFILE)),
        *("--log-level", os.environ.get("DRILL_GUNICORN_LOG_LEVEL", "info")),
        *os.environ.get("DRILL_GUNICORN_ARGS", "").split(),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env or app_environment(),
        stdout=subprocess.DEVNULL,
        stderr=GUNICORN_LOG,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if call(port, "GET", "/healthz").status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


@dataclass
class Answer:
    status: int | None
    body: dict | None
    started: float
    elapsed: float
    # "refused": no connection; "reset": connected, but no answer came back.
    failure: str | None = None
    request_id: str = ""


def call(port: int, method: str, path: str, token: str | None = None, body=None,
         headers: dict | None = None, timeout: float = 10) -> "Answer":  # fmt: skip
    started = time.monotonic()
    request_id = uuid.uuid4().hex
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.connect()
    except OSError:
        return Answer(None, None, started, time.monotonic() - started, "refused", request_id)
    try:
        all_headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
        all_headers.update(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
        parsed = json.loads(raw) if raw and raw[:1] in b"{[" else None
        return Answer(
            response.status, parsed, started, time.monotonic() - started, None, request_id
        )
    except (OSError, http.client.HTTPException) as error:
        return Answer(
            None,
            None,
            started,
            time.monotonic() - started,
            f"reset: {method} {error!r}",
            request_id,
        )
    finally:
        connection.close()


@dataclass
class Load:
    port: int
    parking_id: int
    drivers: list[tuple[int, str]]
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[Answer] = field(default_factory=list)
    created: dict[int, set[int]] = field(default_factory=lambda: collections.defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: Answer) -> Answer:
        with self.lock:
            self.answers.append(answer)
        return answer

    def reader(self, index: int) -> None:
        tokens = [token for _, token in self.drivers]
        n = index
        while not self.stop.is_set():
            self.record(call(self.port, "GET", "/api/car_driver/parking_sessions/current",
                             tokens[n % len(tokens)]))  # fmt: skip
            n += READERS

    def writer(self, index: int) -> None:
        """Start, then cancel, over and over, retrying each step until it is answered."""
        mine = self.drivers[index::WRITERS]
        n = 0
        while not self.stop.is_set():
            driver_id, token = mine[n % len(mine)]
            n += 1
            session_id = self._until_answered(
                "POST", "/api/car_driver/parking_sessions", token,
                {"secured_parking_id": self.parking_id}, {"Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            if session_id is None:
                continue
            with self.lock:
                self.created[driver_id].add(session_id)
            self._until_answered(
                "POST", f"/api/car_driver/parking_sessions/{session_id}/cancel", token, None, {}
            )

    def _until_answered(self, method, path, token, body, headers) -> int | None:
        while True:
            answer = self.record(call(self.port, method, path, token, body, headers))
            if answer.status in (200, 201):
                return answer.body["parking_session"]["id"]
            if answer.status is not None and answer.status not in (503,):
                return None  # a definitive refusal (e.g. 409): nothing to track
            if self.stop.is_set():
                return None
            time.sleep(0.1)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(READERS)]
        threads += [threading.Thread(target=self.writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        return threads


def verify_sessions(load: Load) -> tuple[int, int]:
    """(lost, duplicated): sessions answered 201 but missing, and rows nobody was told of."""
    env = app_environment()
    script = (
        "import json; from parking.models import ParkingSession as S;"
        "print(json.dumps(list(S.objects.values_list('driver_id', 'pk'))))"
    )
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
                            check=True, env=env, capture_output=True, text=True)  # fmt: skip
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    stored = collections.defaultdict(set)
    for driver_id, session_id in rows:
        stored[driver_id].add(session_id)
    lost = sum(len(ids - stored[driver]) for driver, ids in load.created.items())
    duplicated = sum(len(ids - load.created.get(driver, set())) for driver, ids in stored.items())
    return lost, duplicated


def summarize(
    answers: list[Answer], since: float, until: float | None = None
) -> collections.Counter:
    window = [a for a in answers if a.started >= since and (until is None or a.started < until)]
    return collections.Counter(a.status if a.status is not None else a.failure.split(":")[0]
                               for a in window)  # fmt: skip


def first_answer_after(load: Load, moment: float, deadline: float) -> float | None:
    """When the first request sent after ``moment`` got a normal answer."""
    while time.monotonic() < deadline:
        with load.lock:
            for answer in load.answers:
                if answer.started >= moment and answer.status in (200, 201, 404):
                    return answer.started + answer.elapsed
        time.sleep(0.05)
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # reap it if it is our child, so a zombie does not look alive
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def db_outage_drill() -> bool:
    parking_id, drivers = prepare_database()
    port = free_port()
    server = start_gunicorn(port)
    load = Load(port, parking_id, drivers)
    probes: list[tuple[str, int | None]] = []
    threads = load.run()
    try:
        time.sleep(5)
        outage_started = time.monotonic()
        pg_ctl("stop")
        stopped_at = time.monotonic()
        time.sleep(2)
        probes.append(("healthz", call(port, "GET", "/healthz").status))
        probes.append(("readyz", call(port, "GET", "/readyz").status))
        time.sleep(6)
        restarting_at = time.monotonic()
        pg_ctl("start")
        while not pg_answers():
            time.sleep(0.1)
        back_at = time.monotonic()
        recovered_at = first_answer_after(load, back_at, deadline=back_at + 30)
        probes.append(("readyz after", call(port, "GET", "/readyz").status))
        time.sleep(5)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=15)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if not pg_answers():
            pg_ctl("start")
    lost, duplicated = verify_sessions(load)
    before = summarize(load.answers, 0, outage_started)
    during = summarize(load.answers, stopped_at, restarting_at)
    after = summarize(load.answers, restarting_at)
    slowest = max(
        (a.elapsed for a in load.answers if stopped_at <= a.started < restarting_at), default=0
    )
    other_5xx = sum(n for status, n in (before + during + after).items()
                    if isinstance(status, int) and status >= 500 and status != 503)  # fmt: skip
    recovery = (recovered_at - back_at) if recovered_at else None
    report = {
        "requests": len(load.answers),
        "before outage": dict(before),
        "during outage (PostgreSQL down)": dict(during),
        "from the restart on": dict(after),
        "slowest answer during outage (s)": round(slowest, 3),
        "5xx other than 503": other_5xx,
        "seconds to recover after PostgreSQL is back": round(recovery, 3) if recovery else None,
        "probes": probes,
        "sessions created": sum(len(ids) for ids in load.created.values()),
        "sessions lost": lost,
        "sessions duplicated": duplicated,
    }
    print(json.dumps(report, indent=2))
    return (
        other_5xx == 0 and lost == 0 and duplicated == 0 and recovery is not None
        and during.get(503, 0) > 0 and slowest < 3 and ("healthz", 200) in probes
        and ("readyz", 503) in probes and ("readyz after", 200) in probes
    )  # fmt: skip


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in result.stdout.split()]


def new_master_of(old_master: int, deadline: float) -> int:
    """The re-executed master is the old master's child that has workers of its own."""
    while time.monotonic() < deadline:
        for child in children_of(old_master):
            if children_of(child):
                return child
        time.sleep(0.1)
    raise RuntimeError("the new gunicorn master did not start")


def read_pid(path: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            time.sleep(0.1)
    raise RuntimeError(f"no pid in {path}")


def hot_upgrade(master_pid: int) -> int:
    """gunicorn's zero-downtime upgrade: USR2 starts a new master (new code) that inherits
    the listening socket; WINCH lets the old workers finish and exit; TERM ends the old
    master. The socket stays open throughout, so nothing waiting in it is reset."""
    os.kill(master_pid, signal.SIGUSR2)
    new_master = new_master_of(master_pid, time.monotonic() + 20)
    time.sleep(2)  # the new workers boot and start accepting
    os.kill(master_pid, signal.SIGWINCH)
    time.sleep(2)
    os.kill(master_pid, signal.SIGTERM)
    while pid_alive(master_pid):
        time.sleep(0.1)
    time.sleep(1)  # the new master notices its parent is gone and promotes itself
    return new_master


def restarts_drill() -> bool:
    parking_id, drivers = prepare_database()
    port = free_port()
    server = start_gunicorn(port)
    load = Load(port, parking_id, drivers)
    threads = load.run()
    master = read_pid(PIDFILE, time.monotonic() + 5)
    try:
        time.sleep(3)
        os.kill(master, signal.SIGHUP)  # reload: new workers, old ones finish and exit
        time.sleep(4)
        master = hot_upgrade(master)
        time.sleep(2)
        os.kill(master, signal.SIGHUP)
        time.sleep(4)
        reloads_done = time.monotonic()
        os.kill(master, signal.SIGTERM)
        while pid_alive(master):
            time.sleep(0.1)
        stopped = time.monotonic()
    finally:
        load.stop.set()
        for pid in (server.pid, master):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=15)
    lost, duplicated = verify_sessions(load)
    during_reloads = summarize(load.answers, 0, reloads_done)
    during_shutdown = summarize(load.answers, reloads_done, stopped)
    accepted = set(ACCEPTED_LOG.read_text().split())
    unanswered_ids = {a.request_id for a in load.answers if a.status is None} & accepted
    accepted_unanswered = len(unanswered_ids)
    reset_before_accept = sum(
        1 for a in load.answers if a.failure and a.failure.startswith("reset")
        and a.request_id not in accepted
    )  # fmt: skip
    errors_5xx = sum(1 for a in load.answers if a.status and a.status >= 500)
    report = {
        "requests": len(load.answers),
        "during reloads (HUP, hot upgrade, HUP)": dict(during_reloads),
        "during SIGTERM shutdown": dict(during_shutdown),
        "accepted by a worker but unanswered": accepted_unanswered,
        "reset in the listen queue, never accepted by a worker": reset_before_accept,
        "failures seen": sorted({a.failure for a in load.answers if a.failure}),
        "unanswered after acceptance": [
            (a.failure, round(a.started - stopped, 3), round(a.elapsed, 3))
            for a in load.answers
            if a.request_id in unanswered_ids
        ],
        "5xx": errors_5xx,
        "sessions lost": lost,
        "sessions duplicated": duplicated,
    }
    print(json.dumps(report, indent=2))
    # At SIGTERM the listening socket closes: connections still queued in it (never taken by
    # a worker) are reset. That is why the proxy stops routing to an instance before its
    # SIGTERM; those requests never reached the app and the clients can retry them.
    return (
        accepted_unanswered == 0 and during_reloads.get("reset", 0) == 0
        and errors_5xx == 0 and lost == 0 and duplicated == 0
    )  # fmt: skip


REDIS_DRILL_RATE = 20  # per minute, for the one driver the redis-outage drill sends as


class DrillRedis:
    """A redis-server of the drill's own on a spare port, so stopping it disturbs nothing."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Starts it; returns when it first answered a PING."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        while not self.answers():
            time.sleep(0.005)
        return time.monotonic()

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None


def throttled_load(port: int, token: str, stop: threading.Event, answers: list) -> None:
    while not stop.is_set():
        answers.append(call(port, "GET", "/api/car_driver/parking_sessions/current", token))


def redis_outage_drill() -> bool:
    """One driver over its rate limit, from 4 threads; Redis is stopped for 5 s, then
    started again (empty, so the driver's count starts over)."""
    _, drivers = prepare_database(REDIS_DRILL_PG)
    redis_server = DrillRedis()
    redis_server.start()
    port = free_port()
    env = {**app_environment(REDIS_DRILL_PG), "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
           "API_THROTTLE_DRIVER_RATE": f"{REDIS_DRILL_RATE}/min"}  # fmt: skip
    server = start_gunicorn(port, env)
    stop = threading.Event()
    answers: list[Answer] = []
    threads = [threading.Thread(target=throttled_load, args=(port, drivers[0][1], stop, answers))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        redis_server.stop()
        stopped_at = time.monotonic()
        time.sleep(5)
        restarting_at = time.monotonic()
        answering_at = redis_server.start()
        time.sleep(5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        redis_server.stop()
    before = summarize(answers, 0, stopped_at)
    during = summarize(answers, stopped_at, restarting_at)
    after = [a for a in answers if a.started >= answering_at]
    first_429 = next((a for a in sorted(after, key=lambda a: a.started) if a.status == 429), None)
    recovery = first_429.started + first_429.elapsed - answering_at if first_429 else None
    limit_from = first_429.started if first_429 else float("inf")
    passed_before_limit = sum(1 for a in after if a.started < limit_from and a.status != 429)
    slowest = max((a.elapsed for a in answers if stopped_at <= a.started < restarting_at),
                  default=0)  # fmt: skip
    server_errors = sum(n for status, n in (before + during + summarize(after, 0)).items()
                        if isinstance(status, int) and status >= 500)  # fmt: skip
    report = {
        "rate limit": f"{REDIS_DRILL_RATE}/min",
        "before outage": dict(before),
        "during outage (Redis down, 5 s)": dict(during),
        "slowest answer during outage (s)": round(slowest, 3),
        "from Redis answering on": dict(summarize(after, 0)),
        # The counter starts over on the empty Redis, so the limit lets REDIS_DRILL_RATE
        # through by itself (twice that when a new minute starts meanwhile).
        "let through from Redis answering to the first 429": passed_before_limit,
        "seconds from Redis answering to the first 429": round(recovery, 3) if recovery else None,
        "5xx": server_errors,
    }
    print(json.dumps(report, indent=2))
    return (
        server_errors == 0 and recovery is not None and recovery < 1
        and before.get(429, 0) > 0 and during.get(404, 0) > 0 and during.get(429, 0) == 0
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    drills = {"db-outage": db_outage_drill, "restarts": restarts_drill,
              "redis-outage": redis_outage_drill}  # fmt: skip
    parser.add_argument("drill", choices=list(drills))
    drill = parser.parse_args().drill
    try:
        ok = drills[drill]()
    finally:
        # The drills' own cluster is started on demand; leave nothing running behind.
        if pg_answers():
            pg_ctl("stop")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
