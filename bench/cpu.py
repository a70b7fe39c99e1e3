"""How much of the machine something else used while a round ran.

The benchmark shares 2 cores with whatever else runs (test suites, other servers); a round
that competed with them measures them too. ``Meter`` samples /proc during a round: all busy
CPU time, minus what the benchmark's own processes used, is the share of the machine taken
by others. The benchmark's processes are the gunicorn process groups (workers come and go:
``max_requests`` recycles them), the PostgreSQL backends of the benchmark databases (known by
their process title, which names the database), the Redis server the project's throttle
counters live in, this process and its reaped children (wrk).
Sampling every half second keeps the time of processes that exit during the round.
"""

import os
import resource
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.5


def _system() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def _ours(pid_dir: Path, fields: list[str], groups: set[int], titles: tuple[str, ...]) -> bool:
    if int(fields[2]) in groups:  # pgrp
        return True
    try:
        title = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if title.startswith("redis-server"):
        return True
    return title.startswith("postgres:") and any(t in title for t in titles)


def _sample(
    groups: set[int], titles: tuple[str, ...], known: dict[int, bool], group_of: dict[int, int]
) -> dict[int, int]:
    """CPU ticks so far of the benchmark's processes, by pid (and each one's process group)."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        # After the command name: state, ppid, pgrp, …; utime and stime are fields 14, 15.
        fields = text.rsplit(")", 1)[1].split()
        if pid not in known:
            known[pid] = _ours(entry, fields, groups, titles)
        if known[pid]:
            ticks[pid] = int(fields[11]) + int(fields[12])
            group_of[pid] = int(fields[2])
    return ticks


def _own_ticks() -> float:
    """This process (the paced load generator runs in it) and its reaped children (wrk)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += (usage.ru_utime + usage.ru_stime) * TICK
    return total


class Meter:
    """``busy`` and ``others`` as shares of the machine; ``server_seconds``: CPU time used by
    the gunicorn process group ``server`` (master and workers), when given."""

    def __init__(
        self, groups: set[int], databases: tuple[str, ...], server: int | None = None
    ) -> None:
        self.groups = groups
        self.titles = tuple(f" {db} " for db in databases)
        self.server = server

    def _sample(self) -> dict[int, int]:
        return _sample(self.groups, self.titles, self.known, self.group_of)

    def __enter__(self) -> "Meter":
        self.known: dict[int, bool] = {}
        self.group_of: dict[int, int] = {}
        self.first = self._sample()
        self.last = dict(self.first)
        self.start = (_system(), _own_ticks())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.last.update(self._sample())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.last.update(self._sample())
        (busy0, total0), own0 = self.start
        busy1, total1 = _system()
        ours = sum(t - self.first.get(pid, 0) for pid, t in self.last.items())
        ours += _own_ticks() - own0
        total = max(1, total1 - total0)
        self.busy = (busy1 - busy0) / total
        self.others = max(0.0, (busy1 - busy0 - ours) / total)
        server_ticks = sum(
            t - self.first.get(pid, 0)
            for pid, t in self.last.items()
            if self.group_of.get(pid) == self.server
        )
        self.server_seconds = server_ticks / TICK


def busy_now(seconds: float = 1.0) -> float:
    busy0, total0 = _system()
    time.sleep(seconds)
    busy1, total1 = _system()
    return (busy1 - busy0) / max(1, total1 - total0)
