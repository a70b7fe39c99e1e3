"""Instructions per ``GET current`` request, counted by Valgrind, for the project and variants.

    python -m bench.instructions --variant without_x=<ref> [--variant …]

Throughput on a shared 2-core machine moves by ±10% between rounds, more than most single
changes are worth; the number of instructions the server process runs per request moves by
well under 1% and so decides a change of a few percent. Each server is the app in-process
behind Django's WSGI handler (what gunicorn calls, with its request signals and
connection health checks), driven through the same rotation of tokens against a small
seeded database; the count is the difference of two run lengths, so start-up and warm-up
cancel out. It measures the app's CPU only: the database's work per request is the same
for every variant that sends the same statements.
"""

import argparse
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import seed
from bench.layout import Layout
from bench.run import OUT, ROOT, export_ref, python_for, write_tokens

LAYOUT = Layout(drivers=2_000, sessions=20_000, open=1_000, write_drivers=100)
DATABASE = "parking_bench_instructions"
SHORT, LONG, WARM = 100, 600, 50


def count(app_dir: Path, python: str, tokens: Path, requests: int) -> int:
    env = seed.django_env(DATABASE) | {
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        # The same hashes in every run: dict and set layouts then cost the same each time.
        "PYTHONHASHSEED": "0",
    }
    driver = [str(ROOT / "bench" / "wsgi_driver.py"), str(tokens), str(WARM), str(requests)]
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *driver],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{app_dir.name}: the counted run failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_request(app_dir: Path, python: str, tokens: Path) -> int:
    counted = count(app_dir, python, tokens, LONG) - count(app_dir, python, tokens, SHORT)
    return counted // (LONG - SHORT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=REF")
    parser.add_argument("--app-ref", default="HEAD", help="the project's commit")
    args = parser.parse_args()
    record = seed.layout_record(LAYOUT, ROOT)
    if seed.stored_layout(DATABASE) != record:
        seed.seed(DATABASE, LAYOUT, sys.stderr)
    tokens = write_tokens(DATABASE, LAYOUT)
    servers = [("project", args.app_ref)] + [tuple(v.split("=", 1)) for v in args.variant]
    rows = []
    for name, ref in servers:
        app_dir, code = export_ref(ref)
        rows.append((name, code, per_request(app_dir, python_for(app_dir), tokens)))
        print(f"{name}: {rows[-1][2]:,} instructions per request", file=sys.stderr)
    project = rows[0][2]
    lines = [
        "## Instructions per request (Valgrind), side by side",
        "",
        f"- Command: `python -m bench.instructions {' '.join(sys.argv[1:])}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {LAYOUT.sessions:,} sessions, "
        f"{LAYOUT.open:,} open; {LONG - SHORT} requests counted per server",
        "",
        "| server | code | instructions per request | / project |",
        "|---|---|---|---|",
        *(f"| {n} | {c} | {i:,} | {i / project:.3f} |" for n, c, i in rows),
        "",
    ]
    print("\n".join(lines))
    (OUT / "instructions.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
