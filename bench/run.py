"""Benchmark ``GET /api/car_driver/parking_sessions/current`` against the floor (bench/README.md).

    python -m bench.run            # full sizes: 100k drivers, 1M sessions, 50k open
    python -m bench.run --quick    # small sizes, short rounds: a smoke run

Seeds PostgreSQL, serves the project and the floor (bench/floor.py) with the same gunicorn
settings, checks they answer byte for byte alike, then drives them alternately with wrk and
reports req/s, latency, queries per request and the ratio project/floor; also the project at
10k sessions (flatness), the write path under concurrency and the admin session list.
Every process it starts is stopped on exit, error, Ctrl-C or --timeout.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import checks, cpu, paced, payments, seed, write_path
from bench.layout import DRIVER_GETS, Layout, driver_requests, raw_token

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
CURRENT = "/api/car_driver/parking_sessions/current"

FULL = {
    "drivers": 100_000,
    "sessions": 1_000_000,
    "open": 50_000,
    "write_drivers": 2_000,
    "small_sessions": 10_000,
    "duration": 20,
    "rounds": 3,
    "warmup": 5,
    "timeout": 3600,
}
QUICK = {
    "drivers": 5_000,
    "sessions": 50_000,
    "open": 2_500,
    "write_drivers": 200,
    "small_sessions": 2_500,
    "duration": 5,
    "rounds": 2,
    "warmup": 2,
    "timeout": 900,
}


class Interrupted(Exception):
    pass


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------


class Servers:
    """gunicorn masters, each in its own process group so the whole group can be stopped.

    Both servers get the same settings: bench/gunicorn_bench.py (2 sync workers), or with
    --app-gunicorn-config the served checkout's own gunicorn.conf.py; the command line pins
    the bind address and the number of workers."""

    def __init__(self, args) -> None:
        self.args = args
        self.running: dict[str, subprocess.Popen] = {}
        self.specs: dict[str, tuple[str, Path, dict]] = {}
        self.ports: dict[str, int] = {}
        self.restarts: list[str] = []

    def start(
        self, name: str, target: str, chdir: Path, env: dict, python: str = sys.executable
    ) -> int:
        self.specs[name] = (target, chdir, env, python)
        port = _free_port()
        command = [
            python, "-m", "gunicorn", target,
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(self.args.workers),
            "--chdir", str(chdir),
            "--config", str(self.args.gunicorn_config),
        ]  # fmt: skip
        with open(OUT / f"{name}.log", "ab") as log_file:
            stamp = datetime.now(UTC).isoformat()
            log_file.write(f"\n=== {stamp} {shlex.join(command)}\n".encode())
            log_file.flush()
            self.running[name] = subprocess.Popen(
                command,
                cwd=self.args.app_dir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
            )
        _wait_until_serving(port, self.running[name], name)
        self.ports[name] = port
        return port

    def port(self, name: str) -> int:
        """The server's port, restarting it first if something killed it."""
        process = self.running.get(name)
        if process is not None and process.poll() is None:
            return self.ports[name]
        code = None if process is None else process.returncode
        log(f"{name} is gone (exit code {code}): restarting it")
        self.restarts.append(f"{name} (exit code {code}) at {datetime.now(UTC):%H:%M:%S}")
        self.stop(name)
        return self.start(name, *self.specs[name])

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {OUT / name}.log")
        try:
            checks.get(port, "/", None)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer on port {port} within 60 s")


# --- load --------------------------------------------------------------------------------


def wrk(port: int, tokens: Path, args, *, duration: int) -> dict:
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "rotate_tokens.lua"),
        f"http://127.0.0.1:{port}{CURRENT}",
        "--",
        str(tokens),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    statuses = {int(k): v for k, v in data["statuses"].items()}
    seconds = data["duration_us"] / 1e6
    socket_errors = sum(v for k, v in data["errors"].items() if k != "status")
    return {
        "rps": data["requests"] / seconds,
        "requests": data["requests"],
        "p50_ms": data["latency_us"]["p50"] / 1000,
        "p90_ms": data["latency_us"]["p90"] / 1000,
        "p99_ms": data["latency_us"]["p99"] / 1000,
        "max_ms": data["latency_us"]["max"] / 1000,
        "share_404": statuses.get(404, 0) / max(1, data["requests"]),
        "statuses": statuses,
        "errors": socket_errors + sum(v for k, v in statuses.items() if k not in (200, 404)),
    }


def median_of(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def summarize(rounds: list[dict]) -> dict:
    return {
        "others_max": max(r.get("others", 0.0) for r in rounds),
        "rps": median_of(rounds, "rps"),
        "p50_ms": median_of(rounds, "p50_ms"),
        "p99_ms": median_of(rounds, "p99_ms"),
        "server_cpu_ms": median_of(rounds, "server_cpu_ms"),
        "share_404": median_of(rounds, "share_404"),
        "errors": sum(r["errors"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
        "rounds": rounds,
    }


# --- steps -------------------------------------------------------------------------------


def write_tokens(db: str, layout: Layout) -> Path:
    """The read rotation, shuffled once (deterministically) so consecutive requests hit
    unrelated drivers, parkings and session states."""
    drivers = layout.readers()
    random.Random(20170905).shuffle(drivers)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"tokens-{db}.txt"
    path.write_text("".join(f"{raw_token(d)}\n" for d in drivers))
    return path


def query_sample(layout: Layout, path: Path) -> Path:
    """200 requests' worth of tokens, in the rotation's 90/10 mix."""
    readers = layout.readers()
    step = max(1, len(readers) // 200)
    sample = [{"token": raw_token(d)} for d in readers[::step][:200]]
    with_session = [x for x in sample if int(x["token"].rsplit("-", 1)[1]) <= layout.open]
    without = [raw_token(d) for d in readers[layout.open :]][: max(1, len(sample) // 10)]
    sample = with_session[: len(sample) - len(without)] + [{"token": t} for t in without]
    path.write_text(json.dumps(sample))
    return path


def endpoint_tokens(db: str, layout: Layout, endpoint: str) -> Path:
    """The read rotation (write_tokens' order), each line with its request's path."""
    drivers = layout.readers()
    random.Random(20170905).shuffle(drivers)
    slug = endpoint.replace(", ", "-").replace(" ", "-")
    path = OUT / f"requests-{db}-{slug}.txt"
    lines = driver_requests(layout, endpoint, drivers)
    path.write_text("".join(f"{token} {request}\n" for token, request in lines))
    return path


def endpoint_sample(layout: Layout, db: str) -> Path:
    """100 requests of each driver endpoint, over the rotation's 90/10 mix of readers."""
    readers = layout.readers()
    picked = readers[: layout.open][:: max(1, layout.open // 90)][:90]
    picked += readers[layout.open :][:10]
    sample = {
        endpoint: [{"token": t, "path": p} for t, p in driver_requests(layout, endpoint, picked)]
        for endpoint in DRIVER_GETS
    }
    path = OUT / f"endpoint-sample-{db}.json"
    path.write_text(json.dumps(sample))
    return path


def driver_endpoints(args, layout: Layout, small: Layout, servers, meter) -> dict:
    """Every driver GET, saturated, at both sizes back to back, round after round."""
    sizes = {"project_small": (args.small_db, small)} if not args.no_scale else {}
    sizes["project"] = (args.db, layout)
    files = {
        (endpoint, name): endpoint_tokens(db, lay, endpoint)
        for endpoint in DRIVER_GETS
        for name, (db, lay) in sizes.items()
    }
    for (_endpoint, name), requests in files.items():
        wrk(servers.port(name), requests, args, duration=max(1, args.warmup // 2))
    rounds: dict[str, dict[str, list[dict]]] = {e: {n: [] for n in sizes} for e in DRIVER_GETS}
    for number in range(1, args.rounds + 1):
        seed.refresh_entering(args.db, layout)
        if not args.no_scale:
            seed.refresh_entering(args.small_db, small)
        for endpoint in DRIVER_GETS:
            for name in sizes:
                busy_before = wait_for_quiet(args)
                with meter(name) as measured:
                    result = wrk(servers.port(name), files[endpoint, name], args,
                                 duration=args.duration)  # fmt: skip
                result |= {
                    "busy_before": busy_before,
                    "busy": measured.busy,
                    "others": measured.others,
                    "server_cpu_ms": 1000 * measured.server_seconds / max(1, result["requests"]),
                }
                rounds[endpoint][name].append(result)
                log(
                    f"endpoints {number}/{args.rounds} {endpoint:20s} {name:14s} "
                    f"{result['rps']:8.1f} req/s p50 {result['p50_ms']:.2f} ms "
                    f"p99 {result['p99_ms']:.2f} ms 404 {result['share_404']:.1%} "
                    f"errors {result['errors']} (others {measured.others:.0%})"
                )
    return {e: {n: summarize(r) for n, r in by_size.items()} for e, by_size in rounds.items()}


def write_paths(args, layout: Layout, servers: Servers) -> list[dict]:
    """The whole stay at each --write-concurrency, without card payments and then (unless
    --no-payments) with them, the same drivers each time (their sessions removed between)."""
    runs = [
        one_write_path(args, layout, servers.port("project"), concurrency)
        for concurrency in args.write_concurrency
    ]
    if not args.no_payments:
        runs += paid_write_paths(args, layout, servers)
    return runs


def one_write_path(args, layout: Layout, port: int, concurrency: int, paid: bool = False) -> dict:
    label = "with card payments" if paid else "without payments"
    log(f"write path {label}: {layout.write_drivers} stays, {concurrency} at a time …")
    result = write_path.run(port, layout, concurrency, deadline_s=max(60, args.duration * 6))
    result["payments"] = paid
    if paid:
        # Each stay's hold is released (or captured) by the worker after exit.
        result["payment_states"] = wait_for_jobs(args.db, timeout=120)
    try:
        result["removed_afterwards"] = seed.remove_written_sessions(args.db, layout)
    except Exception as error:  # noqa: BLE001 - the measurement stands; say what is left over
        result["removed_afterwards"] = "failed: " + " ".join(str(error).split())
        log(f"could not remove the write path's sessions: {result['removed_afterwards']}")
    return result


def paid_write_paths(args, layout: Layout, servers: Servers) -> list[dict]:
    """localstripe, a worker and a project server that talk to it, a card per driver."""
    stripe = payments.LocalStripe(args.app_dir, OUT / "localstripe.log")
    worker = None
    try:
        env = served_env(args.db, args) | stripe.env()
        port = servers.start("project_paying", "parking_api.wsgi:application", args.app_dir, env)
        worker = payments.Worker(args.app_dir, env, OUT / "worker.log")
        log(f"saving a card for each of {layout.write_drivers} drivers at localstripe …")
        saved = payments.save_cards(port, stripe.port, layout.writers(), concurrency=8)
        if saved != layout.write_drivers:
            log(f"only {saved} of {layout.write_drivers} cards were saved")
        seed.set_charging(args.db, True)
        try:
            return [
                one_write_path(args, layout, servers.port("project_paying"), c, paid=True)
                | {"cards_saved": saved}
                for c in args.write_concurrency
            ]
        finally:
            seed.set_charging(args.db, False)
    finally:
        servers.stop("project_paying")
        if worker is not None:
            worker.stop()
        stripe.stop()


def wait_for_jobs(db: str, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    states = seed.payment_states(db)
    while states["jobs_pending"] and time.monotonic() < deadline:
        time.sleep(1)
        states = seed.payment_states(db)
    return states


def ensure_seeded(db: str, layout: Layout, args) -> dict:
    record = seed.layout_record(layout, args.app_dir)
    if args.reuse_db and seed.stored_layout(db) == record:
        log(f"{db}: reusing the seeded database ({layout.sessions:,} sessions)")
        return {"db": db, "reused": True, "seconds": 0.0, "planner": seed.tune_planner(db)}
    log(
        f"{db}: seeding {layout.drivers:,} drivers, {layout.sessions:,} sessions "
        f"({layout.open:,} open) …"
    )
    with open(OUT / f"seed-{db}.log", "w") as log_file:
        result = seed.seed(db, layout, log_file, args.app_dir)
    log(f"{db}: seeded in {result['seconds']} s")
    return result | {"planner": seed.tune_planner(db)}


def inproc(command: str, argument: str, db: str, args) -> dict:
    env = served_env(db, args) | {"PYTHONPATH": os.pathsep.join([str(args.app_dir), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "bench.inproc", command, argument],
        cwd=args.app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (OUT / f"inproc-{command}.log").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"bench.inproc {command} failed: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    conn = seed.connect("postgres")
    with conn.cursor() as cur:
        cur.execute("SELECT version()")
        pg = cur.fetchone()[0].split(" on ")[0]
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
    conn.close()
    versions = {}
    for package in ("django", "rest_framework", "oauth2_provider", "gunicorn", "psycopg2"):
        try:
            module = __import__(package)
            versions[package] = getattr(module, "__version__", "?").split(" ")[0]
        except ImportError:
            versions[package] = "missing"
    wrk_version = subprocess.run(
        [shutil.which("wrk") or "wrk", "-v"], capture_output=True, text=True
    ).stdout.split(" [")[0]
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "postgresql": pg,
        "shared_buffers": shared_buffers,
        "python": platform.python_version(),
        "versions": versions,
        "wrk": wrk_version.strip(),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def export_ref(ref: str) -> tuple[Path, str]:
    """A pristine copy of a commit (``git archive``, read-only on the repository)."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = OUT / f"app-{sha}"
    if not target.exists():
        partial = OUT / f"app-{sha}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(target)
    return target, f"{sha} (`git archive {ref}`: committed code only)"


def code_version(app_dir: Path) -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(app_dir), *argv], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"{app_dir} (not a git checkout)"
    dirty = [x for x in git("status", "--porcelain").splitlines() if not x[3:].startswith("bench/")]
    return f"{commit}" + (f" + {len(dirty)} uncommitted changes" if dirty else "")


# --- the run -----------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short rounds")
    parser.add_argument("--drivers", type=int)
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--open", type=int, help="open sessions (one per driver)")
    parser.add_argument("--write-drivers", type=int, help="drivers used by the write path")
    parser.add_argument("--small-sessions", type=int, help="sessions in the flatness database")
    parser.add_argument("--duration", type=int, help="seconds per measured round")
    parser.add_argument("--rounds", type=int, help="alternating rounds per target")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured load per server")
    parser.add_argument("--timeout", type=int, help="hard limit for the whole run, seconds")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (-c)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--write-concurrency",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[8, 32],
        help="drivers at a time on the write path, comma-separated (default 8,32)",
    )
    parser.add_argument(
        "--no-payments", action="store_true", help="skip the write path with card payments"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/15",
        help="the project's REDIS_URL (throttle counters), as in production; '' for none",
    )
    parser.add_argument("--db", default="parking_bench")
    parser.add_argument("--small-db", default="parking_bench_small")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="skip seeding when the database holds the same layout",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the databases")
    parser.add_argument("--no-scale", action="store_true", help="skip the 10k-session database")
    parser.add_argument("--no-paced", action="store_true", help="skip the same-rate rounds")
    parser.add_argument(
        "--no-endpoints", action="store_true", help="skip the rounds of every driver GET"
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="checkout of the project to serve (default: this one)",
    )
    parser.add_argument(
        "--app-ref",
        help="serve this git commit (exported with git archive) instead of the working tree",
    )
    parser.add_argument(
        "--app-gunicorn-config",
        action="store_true",
        help="serve both with the checkout's gunicorn.conf.py instead of bench/gunicorn_bench.py",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=REF",
        help="also serve commit REF (git archive) as NAME in the saturated rounds, beside the "
        "project: a same-run A/B of one change (repeatable)",
    )
    parser.add_argument("--results", type=Path, help="markdown results file")
    parser.add_argument(
        "--idle-threshold",
        type=float,
        default=0.10,
        help="busy CPU share above which a round waits for the machine",
    )
    parser.add_argument(
        "--idle-wait",
        type=int,
        default=60,
        help="longest wait for a quiet machine before each round, seconds",
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.app_dir = args.app_dir.resolve()
    if args.results is None:
        args.results = OUT / "results-quick.md" if args.quick else BENCH / "results.md"
    args.wrk = shutil.which("wrk")
    args.gunicorn_config = BENCH / "gunicorn_bench.py"
    return args


def resolve_app(args) -> str:
    """Which code is served (a checkout, or a commit exported for the run) and its settings."""
    code = code_version(args.app_dir)
    if args.app_ref:
        args.app_dir, code = export_ref(args.app_ref)
    if args.app_gunicorn_config:
        args.gunicorn_config = args.app_dir / "gunicorn.conf.py"
        if not args.gunicorn_config.exists():
            raise SystemExit(f"{args.gunicorn_config} does not exist")
    return code


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian package)")
    OUT.mkdir(exist_ok=True)
    for old_log in OUT.glob("*.log"):
        old_log.unlink()
    command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    layout = Layout(args.drivers, args.sessions, args.open, args.write_drivers)
    layout.validate()
    small = Layout(
        args.drivers,
        args.small_sessions,
        min(args.open, args.small_sessions // 2),
        args.write_drivers,
    )
    small.validate()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, _interrupt)
    signal.alarm(args.timeout)
    servers = Servers(args)
    started = time.monotonic()
    code = resolve_app(args)
    results: dict = {
        "command": command.strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code,
        "app_dir": str(args.app_dir),
        "layout": seed.layout_record(layout),
        "small_layout": None if args.no_scale else seed.layout_record(small),
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s",
        "rounds": args.rounds,
        "workers": args.workers,
    }
    try:
        results["machine"] = machine()
        run_all(args, layout, small, servers, results)
        status = 0 if results["identity"]["ok"] and results["behaviours_ok"] else 1
    except (Interrupted, KeyboardInterrupt) as stop:
        log(f"stopped: {stop or 'Ctrl-C'}")
        results["aborted"] = f"stopped: {stop or 'Ctrl-C'}"
        status = 130
    except Exception as error:
        log(f"failed: {error}")
        results["aborted"] = "failed: " + " ".join(str(error).split())
        status = 1
    finally:
        signal.alarm(0)
        servers.stop_all()
        if not args.keep_db and not args.reuse_db:
            for db in (args.db, args.small_db):
                try:
                    seed.drop_database(db)
                except Exception as error:  # noqa: BLE001 - best effort on the way out
                    log(f"could not drop {db}: {error}")
    results["total_seconds"] = round(time.monotonic() - started, 1)
    write_results(results, args)
    return status


def write_results(results: dict, args) -> None:
    # A partial run never replaces the last complete report.
    stem = "results-partial" if "aborted" in results else "results"
    if args.quick:
        stem += "-quick"
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str))
    if "machine" not in results:
        return
    from bench.report import markdown

    text = markdown(results)
    print(text)
    if "aborted" in results or args.quick:
        target = OUT / f"{stem}.md"
        target.write_text(text)
    else:
        target = args.results
        target.write_text(with_history(text, target))
    log(f"results written to {target}")


HISTORY_TITLE = "# Benchmark results, newest first"
HISTORY_INTRO = (
    "Every full run of `python -m bench.run` (bench/README.md) adds its report at the top; "
    "compare ratios within a run, not absolute figures across runs."
)


def with_history(report: str, path: Path) -> str:
    """The file's run reports, this one first, each a section of its own."""
    earlier = path.read_text() if path.exists() else ""
    if earlier.startswith(HISTORY_TITLE):
        earlier = earlier.split("\n\n", 2)[2] if earlier.count("\n\n") >= 2 else ""
    elif earlier:
        earlier = _demoted(earlier)  # a single report from before the history began
    sections = [HISTORY_TITLE, HISTORY_INTRO, _demoted(report)]
    if earlier.strip():
        sections.append(earlier.strip())
    return "\n\n".join(sections) + "\n"


def _demoted(report: str) -> str:
    """Headings one level down: the report's title becomes its section's heading."""
    return "\n".join("#" + line if line.startswith("#") else line for line in report.splitlines())


def run_all(args, layout: Layout, small: Layout, servers: Servers, results: dict) -> None:
    results["seed"] = [ensure_seeded(args.db, layout, args)]
    if not args.no_scale:
        results["seed"].append(ensure_seeded(args.small_db, small, args))
    targets = start_servers(args, layout, small, servers, results)
    project, floor = servers.port("project"), servers.port("floor")

    log("checking that the floor answers exactly like the project …")
    results["identity"] = checks.identity(project, floor, layout)
    if not results["identity"]["ok"]:
        log(f"IDENTITY MISMATCH: {json.dumps(results['identity']['mismatches'][:2])[:1500]}")
    plain = checks.identity(project, servers.port("floor_plain"), layout)
    results["identity_floor_plain"] = plain
    results["identity"]["ok"] = results["identity"]["ok"] and plain["ok"]
    results["behaviours"] = {
        "project": checks.behaviours(project, layout, args.db, project=True),
        "floor": checks.behaviours(floor, layout, args.db, project=False),
    }
    results["behaviours_ok"] = all(b["ok"] for b in results["behaviours"].values())

    for name, token_file in targets.items():
        log(f"warming up {name} ({args.warmup} s)")
        wrk(servers.port(name), token_file, args, duration=args.warmup)
    meter = meter_for(args, servers)
    results["get_current"] = alternate(args, layout, small, targets, servers, meter, "saturated")
    if not args.no_paced:
        # Half the project's saturated throughput, offered open-loop to both (bench/paced.py).
        rate = 0.5 * results["get_current"]["project"]["rps"]
        paced_names = ("project", "floor_plain", "floor")
        paced_targets = {name: targets[name] for name in paced_names}
        results["paced"] = {
            "target_rps": rate,
            **alternate(args, layout, small, paced_targets, servers, meter, "paced", rate),
        }

    if not args.no_endpoints:
        results["endpoints"] = driver_endpoints(args, layout, small, servers, meter)

    log("counting queries per request (in-process) …")
    sample = query_sample(layout, OUT / "query-sample.json")
    results["queries"] = inproc("queries", str(sample), args.db, args)
    if not args.no_endpoints:
        results["endpoint_queries"] = {
            "project": inproc("endpoints", str(endpoint_sample(layout, args.db)), args.db, args)
        }
        if not args.no_scale:
            sample = endpoint_sample(small, args.small_db)
            small_counts = inproc("endpoints", str(sample), args.small_db, args)
            results["endpoint_queries"]["project_small"] = small_counts

    results["write_path"] = write_paths(args, layout, servers)

    servers.stop_all()
    log("admin session list (in-process) …")
    active_pages = max(1, int(layout.open * 0.9) // 100)
    # Page 50: deep enough to pay for OFFSET, within reach of a paginator capped at 10k rows.
    pages = f"{layout.superuser_id},{min(50, layout.sessions // 200)},{min(50, active_pages)}"
    results["admin"] = inproc("admin", pages, args.db, args)
    results["server_log_errors"] = {
        name: _count_errors(OUT / f"{name}.log")
        for name in (
            "project",
            "floor",
            "floor_plain",
            "project_small",
            "floor_small",
            *(f"variant_{v}" for v in results.get("variants", {})),
        )
    }
    results["server_restarts"] = servers.restarts


def start_servers(args, layout: Layout, small: Layout, servers: Servers, results: dict) -> dict:
    """The project and the floors on the big database (and the project and the floor on the
    small one), each with the same gunicorn settings; returns name → token file."""
    results["gunicorn_config"] = str(args.gunicorn_config)
    tokens = write_tokens(args.db, layout)
    seed.refresh_entering(args.db, layout)
    app_env = served_env(args.db, args)
    project = servers.start("project", "parking_api.wsgi:application", args.app_dir, app_env)
    style = checks.error_style(project, layout)
    results["floor_error_style"] = style
    results["redis_url"] = args.redis_url
    floor_options = {"BENCH_FLOOR_ERRORS": style, "BENCH_FLOOR_PREPARED": "1"}
    floor_env = app_env | floor_options
    servers.start("floor", "bench.floor:application", ROOT, floor_env)
    # The floor: the same SQL sent as text, planned on every request.
    plain_env = floor_env | {"BENCH_FLOOR_PREPARED": "0"}
    servers.start("floor_plain", "bench.floor:application", ROOT, plain_env)
    targets = {"project": tokens, "floor_plain": tokens, "floor": tokens}
    results["variants"] = {}
    for spec in args.variant:
        name, _, ref = spec.partition("=")
        variant_dir, variant_code = export_ref(ref)
        python = python_for(variant_dir)
        servers.start(
            f"variant_{name}", "parking_api.wsgi:application", variant_dir, app_env, python
        )
        targets[f"variant_{name}"] = tokens
        results["variants"][name] = variant_code
    if not args.no_scale:
        small_tokens = write_tokens(args.small_db, small)
        seed.refresh_entering(args.small_db, small)
        small_env = served_env(args.small_db, args)
        servers.start("project_small", "parking_api.wsgi:application", args.app_dir, small_env)
        small_floor_env = small_env | floor_options
        servers.start("floor_small", "bench.floor:application", ROOT, small_floor_env)
        # The floor at both sizes too: what the data size costs the machine itself.
        targets |= {"project_small": small_tokens, "floor_small": small_tokens}
    # Each round runs the compared pairs back to back (project at both sizes, project and
    # the issue's floor, both floors' sizes), so the machine's drift between rounds
    # cancels out of the round-by-round ratios.
    order = ("project_small", "project", "floor_plain", "floor", "floor_small")
    variants = [name for name in targets if name.startswith("variant_")]
    # Each variant right after the project and the plain floor it is compared with.
    order = order[:3] + tuple(variants) + order[3:]
    return {name: targets[name] for name in order if name in targets}


def python_for(app_dir: Path) -> str:
    """This Python, or for a checkout whose requirements.txt differs from this one's (another
    database driver, say) the Python of a virtualenv made from its own requirements."""
    requirements = (app_dir / "requirements.txt").read_bytes()
    if requirements == (ROOT / "requirements.txt").read_bytes():
        return sys.executable
    venv = OUT / f"venv-{hashlib.sha256(requirements).hexdigest()[:12]}"
    if not (venv / "ready").exists():
        log(f"making {venv.name} for {app_dir.name}'s requirements …")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(app_dir / "requirements.txt")], check=True)
        (venv / "ready").touch()
    return str(venv / "bin" / "python")


def served_env(db: str, args) -> dict:
    """The environment both servers and the in-process measurements run with: production's
    settings, with the shared Redis cache unless --redis-url ''."""
    return seed.django_env(db) | {"REDIS_URL": args.redis_url}


def meter_for(args, servers: Servers):
    databases = (args.db, args.small_db)

    def meter(name: str) -> cpu.Meter:
        groups = {p.pid for p in servers.running.values()}
        return cpu.Meter(groups, databases, server=servers.running[name].pid)

    return meter


def wait_for_quiet(args) -> float:
    """Wait (up to --idle-wait s) for the machine to calm down before a round; returns the
    CPU share busy just before it started."""
    deadline = time.monotonic() + args.idle_wait
    busy = cpu.busy_now()
    while busy > args.idle_threshold and time.monotonic() < deadline:
        busy = cpu.busy_now(2.0)
    if busy > args.idle_threshold:
        log(f"machine still {busy:.0%} busy after {args.idle_wait} s: measuring anyway")
    return busy


def alternate(args, layout, small, targets, servers, meter, label, rate=None) -> dict:
    """Rounds of project, floor(, project at small scale), repeated; medians per target."""
    rounds: dict[str, list[dict]] = {name: [] for name in targets}
    for number in range(1, args.rounds + 1):
        seed.refresh_entering(args.db, layout)
        if "project_small" in targets:
            seed.refresh_entering(args.small_db, small)
        for name, token_file in targets.items():
            busy_before = wait_for_quiet(args)
            for attempt in (1, 2):
                port = servers.port(name)
                try:
                    with meter(name) as measured:
                        if rate:
                            result = paced.run(port, token_file, rate, args.duration)
                        else:
                            result = wrk(port, token_file, args, duration=args.duration)
                    break
                except RuntimeError:
                    if attempt == 2 or servers.running[name].poll() is None:
                        raise  # wrk itself failed, not the server under it
            result |= {
                "busy_before": busy_before,
                "busy": measured.busy,
                "others": measured.others,
                "server_cpu_ms": 1000 * measured.server_seconds / max(1, result["requests"]),
            }
            rounds[name].append(result)
            log(
                f"{label} {number}/{args.rounds} {name:14s} {result['rps']:8.1f} req/s "
                f"p50 {result['p50_ms']:.2f} ms p99 {result['p99_ms']:.2f} ms "
                f"404 {result['share_404']:.1%} errors {result['errors']} "
                f"cpu {measured.busy:.0%} (others {measured.others:.0%}) "
                f"server {result['server_cpu_ms']:.3f} ms CPU/request"
            )
    return {name: summarize(r) for name, r in rounds.items()}


def _count_errors(path: Path) -> int:
    if not path.exists():
        return 0
    text = path.read_text(errors="replace")
    last_run = text.rsplit("\n=== ", 1)[-1]
    return sum(
        1 for line in last_run.splitlines() if "Traceback" in line or '"level": "ERROR"' in line
    )


if __name__ == "__main__":
    sys.exit(main())
