"""The results of a run (bench/out/results.json) as markdown."""

import json
import statistics
import sys


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def _paired(project: dict, floor: dict) -> list[float]:
    """Throughput ratio of each round's project and floor runs, measured back to back."""
    return [p["rps"] / f["rps"] for p, f in zip(project["rounds"], floor["rounds"], strict=False)]


def _changes(large: dict, small: dict, key: str) -> list[float]:
    """Change from the small database to the large one, round by round (back to back)."""
    pairs = zip(large["rounds"], small["rounds"], strict=False)
    return [big[key] / little[key] - 1 for big, little in pairs]


def _median_change(large: dict, small: dict, key: str) -> float:
    return statistics.median(_changes(large, small, key))


def _ratio_row(label: str, project: dict, floor: dict, target: float | None) -> str:
    ratio = project["rps"] / floor["rps"]
    rounds = ", ".join(f"{x:.2f}" for x in _paired(project, floor))
    met = _mark(ratio >= target) if target else "–"
    return f"| {label} | {ratio:.2f} (round by round: {rounds}) | {met} |"


def _p99_row(label: str, project: dict, floor: dict, limit: float | None, note: str = "") -> str:
    ratio = project["p99_ms"] / floor["p99_ms"]
    met = _mark(ratio <= limit) if limit else "–"
    return f"| {label} | {ratio:.2f}×{note} | {met} |"


def _speed_rows(r: dict, floor_name: str, target: float | None, label: str) -> list[str]:
    """Throughput and p99 of the project against one floor, saturated and at the same rate."""
    get, paced = r.get("get_current", {}), r.get("paced", {})
    project, floor = get.get("project"), get.get(floor_name)
    if not (project and floor):
        return []
    limit = 2 if target else None
    at_most = " ≤ 2×" if target else " /"
    rows = [_ratio_row(f"{label}throughput project/floor" + (" ≥ 0.6" if target else ""),
                       project, floor, target)]  # fmt: skip
    if paced.get(floor_name):
        offered = f" ({paced['target_rps']:.0f} req/s offered)"
        rows.append(
            _p99_row(f"{label}p99{at_most} the floor's at the same request rate",
                     paced["project"], paced[floor_name], limit, offered)
        )  # fmt: skip
    rows.append(_p99_row(f"{label}p99{at_most} the floor's, saturated", project, floor, limit))
    return rows


def _targets(r: dict) -> list[str]:
    """The issue's targets are set against its floor, which sends its two queries as plain
    SQL (``floor_plain``); the floor with prepared statements (``floor``) is the machine's
    ceiling, reported alongside."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += _speed_rows(r, "floor_plain", 0.6, "")
    lines += _speed_rows(r, "floor", None, "(ceiling: the floor with prepared statements) ")
    get = r.get("get_current", {})
    project, prepared = get.get("project"), get.get("floor")
    if "queries" in r:
        queries = r["queries"]["project"]
        worst = max(q["orm"]["max"] for q in queries.values())
        wire = max(q["statements"]["max"] for q in queries.values())
        lines.append(
            f"| ≤ 2 queries per request | {worst} ORM queries ({wire} statements on the wire) | "
            f"{_mark(worst <= 2)} |"
        )
    if project and "project_small" in get:
        small = get["project_small"]
        p50 = _median_change(project, small, "p50_ms")
        p99 = _median_change(project, small, "p99_ms")
        rounds = ", ".join(f"{x:+.1%}" for x in _changes(project, small, "p50_ms"))
        floor_note = ""
        if prepared and "floor_small" in get:
            f50 = _median_change(prepared, get["floor_small"], "p50_ms")
            floor_note = f"; the prepared floor: p50 {f50:+.1%}"
        lines.append(
            f"| latency flat (±5%) {r['small_layout']['sessions']:,} → "
            f"{r['layout']['sessions']:,} sessions | p50 {p50:+.1%} (round by round: {rounds}), "
            f"p99 {p99:+.1%}{floor_note} | {_mark(abs(p50) <= 0.05)} |"
        )
    if "identity" in r:
        identity = r["identity"]
        same = identity["compared"] - len(identity["mismatches"])
        lines.append(
            f"| same bytes as the floor (identity check) | {same}/{identity['compared']} "
            f"identical | {_mark(identity['ok'])} |"
        )
    if "behaviours" in r:
        behaviours = r["behaviours"]["project"]["checks"]
        failed = [name for name, ok in behaviours.items() if not ok]
        note = f" (failed: {', '.join(failed)})" if failed else ""
        lines.append(
            "| revocation, expiry, deactivation, finishing, ownership take effect at once | "
            f"{len(behaviours) - len(failed)}/{len(behaviours)}{note} | {_mark(not failed)} |"
        )
    return lines


def _get_table(r: dict) -> list[str]:
    get = r["get_current"]
    lines = [
        "| server | req/s | p50 | p99 | 404 share | errors | requests |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {
        "project": "project (1M sessions)",
        "floor": "floor (1M sessions)",
        "project_small": "project (10k sessions)",
    }
    if r.get("small_layout"):
        labels["project_small"] = f"project ({r['small_layout']['sessions']:,} sessions)"
        labels["floor_small"] = f"floor ({r['small_layout']['sessions']:,} sessions)"
    labels["project"] = f"project ({r['layout']['sessions']:,} sessions)"
    labels["floor"] = f"floor, prepared statements ({r['layout']['sessions']:,} sessions)"
    labels["floor_plain"] = f"floor, plain SQL ({r['layout']['sessions']:,} sessions)"
    for name, s in get.items():
        label = labels.get(name, name)
        lines.append(
            f"| {label} | {s['rps']:.1f} | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} | "
            f"{s['share_404']:.1%} | {s['errors']} | {s['requests']:,} |"
        )
    return lines


def _rounds_table(section: dict, rounds: int) -> list[str]:
    names = [
        name for name in section if isinstance(section[name], dict) and "rounds" in section[name]
    ]
    lines = ["| round | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i in range(min(len(section[name]["rounds"]) for name in names)):
        cells = []
        for name in names:
            x = section[name]["rounds"][i]
            cells.append(
                f"{x['rps']:.0f} req/s, p50 {x['p50_ms']:.2f}, p99 {x['p99_ms']:.2f}"
                f" (CPU used by others {x.get('others', 0):.0%})"
            )
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return lines


def _noise(r: dict) -> list[str]:
    sections = [r.get("get_current", {}), r.get("paced", {})]
    worst = max(
        (s["others_max"] for section in sections for s in section.values()
         if isinstance(s, dict) and "others_max" in s),
        default=0.0,
    )  # fmt: skip
    if worst <= 0.10:  # below that, within what the meter itself can miss
        return []
    return [
        f"> **Noisy machine**: other processes used up to {worst:.0%} of the CPU during a round"
        " (see the per-round tables). Rounds alternate, so both servers shared the noise, but"
        " absolute numbers are low and ratios less certain; rerun on a quiet machine.",
        "",
    ]


def _queries(r: dict) -> list[str]:
    q = r["queries"]
    lines = [
        "| server | answer | requests | queries (ORM) mean / max | statements on the wire "
        "mean / max |",
        "|---|---|---|---|---|",
    ]
    for status, s in sorted(q["project"].items()):
        lines.append(
            f"| project | {status} | {s['orm']['n']} | {s['orm']['mean']} / "
            f"{s['orm']['max']} | {s['statements']['mean']} / {s['statements']['max']} |"
        )
    for status, s in sorted(q["floor"].items()):
        st = s["statements"]
        lines.append(f"| floor | {status} | {st['n']} | – | {st['mean']} / {st['max']} |")
    return lines


def _sql_label(sql: str | None) -> str:
    """A few words saying what a query is, for the table."""
    if not sql:
        return ""
    text = sql.replace('"', "")
    head, _, rest = text.partition(" FROM ")
    table = rest.split()[0] if rest else ""
    if "COUNT(" in head.upper():
        if rest.startswith("(SELECT"):
            limit = " LIMIT …" if " LIMIT " in rest else ""
            return f"COUNT(*) over a subquery{limit}"
        return f"COUNT(*) {table}" + (" WHERE …" if " WHERE " in rest else "")
    if "DATE_TRUNC" in head.upper() or "MIN(" in head.upper():
        return f"date hierarchy {table}" + (" WHERE …" if " WHERE " in rest else "")
    where = " WHERE …" if " WHERE " in rest else ""
    return f"SELECT … {table}{where}" + (" OFFSET …" if " OFFSET " in rest else "")


def _admin(r: dict) -> list[str]:
    lines = [
        "| page | status | queries | SQL time | wall time | COUNT queries | full-table "
        "COUNT(*) | slowest query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in r["admin"]["pages"]:
        url = p["url"].replace("/admin/parking/parkingsession/", "…/parkingsession/")
        lines.append(
            f"| `{url}` | {p['status']} | {p['queries']} | {p['sql_ms']:.1f} ms | "
            f"{p['wall_ms']:.1f} ms | {p['count_queries']} | "
            f"{'yes' if p['full_table_count'] else 'no'} | {p['slowest_sql_ms']} ms: "
            f"`{_sql_label(p['slowest_sql'])}` |"
        )
    first = r["admin"]["pages"][0]
    if first.get("all_sql"):
        detail = "; ".join(f"{q['ms']:.0f} ms `{_sql_label(q['sql'])}`" for q in first["all_sql"])
        lines += ["", f"Queries of page 1, in order: {detail}."]
    return lines


def _write(r: dict) -> list[str]:
    runs = r["write_path"]
    if isinstance(runs, dict):  # results written before runs at several concurrencies
        runs = [runs]
    steps = list(runs[0]["steps"])
    lines = [
        "| payments | concurrency | journeys (start → entrance_try → enter → exit → finalize) "
        "| sessions/s | requests/s | errors | "
        + " | ".join(f"{s} p50 / p99" for s in steps)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(steps),
    ]
    for w in runs:
        paid = "card hold at start" if w.get("payments") else "none"
        lines.append(
            f"| {paid} | {w['concurrency']} | {w['journeys_ok']:,} / {w['drivers']:,} in "
            f"{w['seconds']} s | {w['sessions_per_s']} | {w['requests_per_s']} | "
            f"{w['errors']} {w['unexpected'] or ''} | "
            + " | ".join(f"{_ms(x['p50_ms'])} / {_ms(x['p99_ms'])}" for x in w["steps"].values())
            + " |"
        )
    paid_runs = [w for w in runs if w.get("payments")]
    if paid_runs:
        states = ", ".join(f"{w['concurrency']}: {w.get('payment_states')}" for w in paid_runs)
        lines += [
            "",
            "With payments every start places a hold at localstripe inside the request (the "
            "parking charges by card, each driver has a saved card); after exit the worker "
            "captures what each stay of a few seconds cost (a started period, at parkings "
            "without free minutes) and releases the rest of the hold. Payments "
            f"by state and jobs still pending when each run ended: {states}.",
        ]
    return lines


def _statements(r: dict, endpoint: str, name: str) -> str:
    """Statements per request on the wire, as "mean (min–max)" over every status."""
    counts = r.get("endpoint_queries", {}).get(name, {}).get(endpoint, {})
    values = [c["statements"] for c in counts.values() if c["statements"]["n"]]
    if not values:
        return "–"
    low, high = min(v["min"] for v in values), max(v["max"] for v in values)
    return str(low) if low == high else f"{low}–{high}"


def _endpoints(r: dict) -> list[str]:
    """Every driver GET at both sizes: throughput, latency, statements, growth and the
    ratio to ``current`` of the same rounds."""
    e = r["endpoints"]
    current = e["current"]["project"]["rps"]
    lines = [
        "| endpoint | req/s 10k / 1M | p50 10k / 1M | p99 10k / 1M | app CPU per request "
        "10k / 1M | statements 10k / 1M | throughput 10k → 1M (median of rounds) | "
        "1M req/s / current's | 404 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for endpoint, sizes in e.items():
        large, small = sizes["project"], sizes.get("project_small")
        ratio = large["rps"] / current
        if small:
            change = _median_change(large, small, "rps")
            growth = f"{change:+.0%} {_mark(abs(change) <= 0.10)}"
            rps = f"{small['rps']:.0f} / {large['rps']:.0f}"
            p50 = f"{small['p50_ms']:.1f} / {large['p50_ms']:.1f} ms"
            p99 = f"{small['p99_ms']:.1f} / {large['p99_ms']:.1f} ms"
            cpu = f"{small['server_cpu_ms']:.2f} / {large['server_cpu_ms']:.2f} ms"
        else:
            growth, rps = "–", f"– / {large['rps']:.0f}"
            p50, p99 = f"– / {large['p50_ms']:.1f} ms", f"– / {large['p99_ms']:.1f} ms"
            cpu = f"– / {large['server_cpu_ms']:.2f} ms"
        statements = f"{_statements(r, endpoint, 'project_small')} / " + _statements(
            r, endpoint, "project"
        )
        errors = large["errors"] + (small["errors"] if small else 0)
        lines.append(
            f"| `{endpoint}` | {rps} | {p50} | {p99} | {cpu} | {statements} | {growth} | "
            f"{ratio:.2f} {_mark(ratio >= 0.5) if endpoint != 'current' else ''} | "
            f"{large['share_404']:.0%}" + (f" ({errors} errors)" if errors else "") + " |"
        )
    return lines


def _seed(r: dict) -> str:
    parts = []
    for s in r["seed"]:
        if s.get("reused"):
            parts.append(f"`{s['db']}` reused")
        else:
            parts.append(f"`{s['db']}` {s['seconds']} s (migrate {s['migrate_seconds']} s)")
    planner = (r["seed"][0].get("planner") or {}) if r.get("seed") else {}
    if planner:
        settings = ", ".join(f"`{name} = {value}`" for name, value in planner.items())
        parts.append(f"planner settings of both databases (every server): {settings}")
    return "; ".join(parts)


def _header(r: dict) -> list[str]:
    m, lay = r["machine"], r["layout"]
    get = r.get("get_current", {})
    lines = ["# Benchmark: `GET /api/car_driver/parking_sessions/current` against the floor", ""]
    if r.get("aborted"):
        lines += [f"> **Run {r['aborted']}**: the results below are partial.", ""]
    if "project" in get and "floor_plain" in get:
        project, plain = get["project"]["rps"], get["floor_plain"]["rps"]
        lines += [
            f"**Throughput ratio project/floor: {project / plain:.2f}** "
            f"({project:.0f} vs {plain:.0f} req/s)."
        ]
        if "floor" in get:
            prepared = get["floor"]["rps"]
            lines[-1] += (
                f" Against the floor with prepared statements (the ceiling): "
                f"{project / prepared:.2f} ({prepared:.0f} req/s)."
            )
        lines += [""]
    plain = ", floor with prepared statements" if "floor_plain" in get else ""
    small = ", project and floor again at small scale" if "project_small" in get else ""
    return lines + [
        f"- Command: `{r['command']}` (run from the repository root; `make bench` does this)",
        f"- Date: {r['date']}; code: {r['code']}; served from `{r['app_dir']}`",
        f"- Machine: {m['cpu']}, {m['nproc']} cores (nproc), {m['memory_gib']} GiB, {m['os']}, "
        f"kernel {m['kernel']}",
        f"- {m['postgresql']} (shared_buffers {m['shared_buffers']}), Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f", {m['wrk']}",
        f"- Data: {lay['drivers']:,} drivers with a valid token each, {lay['sessions']:,} "
        f"sessions ({lay['open']:,} open), {lay['parkings']} parkings with 2–4 access points",
        f"- Load: wrk {r['wrk']}, {r['rounds']} alternating rounds (project, floor{plain}{small}), "
        f"medians reported; gunicorn {r['workers']} sync workers, `DJANGO_DEBUG=0`, both "
        f"servers alike (gunicorn settings: `{r.get('gunicorn_config')}`)",
        f"- Seeding: {_seed(r)}; whole run {r['total_seconds']:.0f} s",
        f"- Floor error bodies: `{r.get('floor_error_style')}` (matched to the project's). "
        "The floor the targets are set against sends its two queries as plain SQL, as the "
        "issue defines it; the floor with prepared statements plans them once per "
        "connection, as the project does, and is the machine's ceiling",
        "- Project cache (throttle counters): "
        + (f"Redis, `REDIS_URL={r['redis_url']}`" if r.get("redis_url") else "process memory"),
        "",
    ]


def _paced(r: dict) -> list[str]:
    p = r["paced"]
    return [
        f"## GET current at the same request rate ({p['target_rps']:.0f} req/s offered, "
        "half the project's saturated throughput)",
        "",
        "| server | req/s | p50 | p99 | errors |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {p[name]['rps']:.1f} | {_ms(p[name]['p50_ms'])} | "
            f"{_ms(p[name]['p99_ms'])} | {p[name]['errors']} |"
            for name in ("project", "floor_plain", "floor")
            if name in p
        ),
        "",
        *_rounds_table(p, r["rounds"]),
        "",
    ]


def _identity_notes(identity: dict) -> list[str]:
    lines = []
    if identity["header_names_differing"]:
        names = ", ".join(identity["header_names_differing"])
        lines += [f"Headers present on one side only (not compared): {names}.", ""]
    if identity["mismatches"]:
        lines += [
            "## Identity mismatches",
            "",
            "```",
            *(f"{x['kind']}: {'; '.join(x['problems'])}" for x in identity["mismatches"][:5]),
            "```",
            "",
        ]
    return lines


def _cpu_ratios(a: dict, b: dict) -> list[float]:
    """Server CPU per request of each round's a over b's."""
    pairs = zip(a["rounds"], b["rounds"], strict=False)
    return [x["server_cpu_ms"] / y["server_cpu_ms"] for x, y in pairs if y.get("server_cpu_ms")]


def _variants(r: dict) -> list[str]:
    """Each variant against the plain floor and the project: throughput, and the CPU its
    server used per request (less moved by other load on the machine), round by round."""
    get = r["get_current"]
    lines = [
        "| variant | code | req/s | / plain floor (rounds) | / project (rounds) "
        "| server CPU per request | / project's (rounds) |",
        "|---|---|---|---|---|---|---|",
    ]
    project, floor = get["project"], get["floor_plain"]

    def row(name: str, code: str, served: dict) -> str:
        to_floor = ", ".join(f"{x:.2f}" for x in _paired(served, floor))
        to_project = ", ".join(f"{x:.2f}" for x in _paired(served, project))
        cpu = _cpu_ratios(served, project)
        cpu_cells = ", ".join(f"{x:.2f}" for x in cpu)
        return (
            f"| {name} | {code.split()[0]} | {served['rps']:.0f} "
            f"| {served['rps'] / floor['rps']:.2f} ({to_floor}) "
            f"| {served['rps'] / project['rps']:.2f} ({to_project}) "
            f"| {served.get('server_cpu_ms', 0):.3f} ms "
            f"| {statistics.median(cpu) if cpu else 0:.2f} ({cpu_cells}) |"
        )

    for name, code in r["variants"].items():
        lines.append(row(name, code, get[f"variant_{name}"]))
    lines.append(row("(project)", r["code"], project))
    return lines


def _driver_sections(r: dict) -> list[str]:
    lines = []
    if "endpoints" in r:
        sizes = [lay["sessions"] for lay in (r.get("small_layout"), r["layout"]) if lay]
        title = " and ".join(f"{size:,}" for size in sizes)
        lines += [f"## Every driver GET, saturated, at {title} sessions", "", *_endpoints(r)]
        lines += [""]
    if "write_path" in r:
        lines += ["## Write path: a whole stay per driver, concurrently", "", *_write(r), ""]
    return lines


def markdown(r: dict) -> str:
    lay = r["layout"]
    lines = [*_header(r), *_noise(r), "## Targets", "", *_targets(r), ""]
    if "get_current" in r:
        lines += ["## GET current, saturated (same wrk settings for all)", "", *_get_table(r)]
        lines += ["", *_rounds_table(r["get_current"], r["rounds"]), ""]
    if r.get("variants"):
        lines += ["## Variants, served in the same rounds", "", *_variants(r), ""]
    if "paced" in r:
        lines += _paced(r)
    if "queries" in r:
        lines += ["## Queries per request (in-process, production settings)", "", *_queries(r)]
        lines += [""]
    lines += _driver_sections(r)
    if "admin" in r:
        title = f"## Admin session list at {lay['sessions']:,} sessions (in-process, median of 3)"
        lines += [title, "", *_admin(r), ""]
    if "identity" in r:
        lines += _identity_notes(r["identity"])
    errors = {k: v for k, v in r.get("server_log_errors", {}).items() if v}
    if errors:
        lines += [f"Errors logged by the servers: {errors} (see bench/out/*.log).", ""]
    if r.get("server_restarts"):
        lines += [f"Servers restarted after dying mid-run: {r['server_restarts']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.load(open(sys.argv[1]))))
