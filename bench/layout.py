"""Who is who in a benchmark database: the data layout shared by the seed, the load and the checks.

Everything is derived from four numbers, so the load generator and the checks can compute
tokens and expectations without reading the database back.

- Drivers have ids ``1..drivers``; driver ``d``'s access token is ``bench-token-{d}``.
- Session ``s`` (ids ``1..sessions``) belongs to driver ``((s - 1) % drivers) + 1``; the last
  ``min(sessions, drivers)`` sessions are each driver's latest one.
- The latest session of drivers ``1..open`` is open: ``exiting`` when ``d % 20 == 0``,
  ``entering`` (fresh) when ``d % 20 == 1``, ``active`` otherwise.
- The latest session of the next ``stale`` drivers is ``entering`` but past the entering
  deadline: it counts as cancelled (no open session), and still holds the partial unique index.
- Everything else is ``finished`` (or ``cancelled`` for every 20th session).
- The read load rotates through the open drivers plus ``open / 9`` drivers without an open
  session (the stale ones first), so ~10% of ``GET current`` answer 404.
- The write path starts sessions for the last ``write_drivers`` drivers, who have none open.
"""

import hashlib
from dataclasses import dataclass

PARKINGS = 200
SEED_VERSION = 4


def raw_token(driver_id: int) -> str:
    return f"bench-token-{driver_id}"


def token_checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Layout:
    drivers: int
    sessions: int
    open: int
    write_drivers: int
    parkings: int = PARKINGS

    @property
    def latest_first(self) -> int:
        """Id of the first session that is some driver's latest one."""
        return self.sessions - min(self.sessions, self.drivers) + 1

    @property
    def no_session_readers(self) -> int:
        """Drivers without an open session in the read rotation: 10% of the rotation."""
        return max(1, round(self.open / 9))

    @property
    def stale(self) -> int:
        """Drivers whose latest session is a stale ``entering`` one (half the 404 readers)."""
        return min(self.no_session_readers // 2, min(self.sessions, self.drivers) - self.open)

    @property
    def superuser_id(self) -> int:
        return self.drivers + 1

    @property
    def capacity(self) -> int:
        per_parking = -(-self.open // self.parkings) + -(-self.stale // self.parkings)
        return 2 * per_parking + -(-self.write_drivers // self.parkings) + 50

    def readers(self) -> list[int]:
        """Driver ids of the read rotation: every open driver plus the 404 readers."""
        return list(range(1, self.open + self.no_session_readers + 1))

    def writers(self) -> list[int]:
        return list(range(self.drivers - self.write_drivers + 1, self.drivers + 1))

    def open_state(self, driver_id: int) -> str | None:
        """The state of the driver's open session as seeded, or None."""
        if driver_id > self.open:
            return None
        return {0: "exiting", 1: "entering"}.get(driver_id % 20, "active")

    def parking_of(self, session_id: int) -> int:
        return (session_id * 37) % self.parkings + 1

    def validate(self) -> None:
        latest = min(self.sessions, self.drivers)
        problems = []
        if self.open > latest:
            problems.append("--open must not exceed --sessions nor --drivers")
        if self.open + self.no_session_readers > self.drivers - self.write_drivers:
            problems.append("not enough drivers for open + 10% readers without one + writers")
        if self.open < 10:
            problems.append("--open must be at least 10")
        if problems:
            raise SystemExit("bad sizes: " + "; ".join(problems))


API = "/api/car_driver"


def sessions_of(layout: Layout, driver_id: int) -> int:
    """How many sessions the driver has (session ``s`` is driver ``((s - 1) % drivers) + 1``'s)."""
    return 0 if driver_id > layout.sessions else (layout.sessions - driver_id) // layout.drivers + 1


def latest_session_of(layout: Layout, driver_id: int) -> int:
    return driver_id + layout.drivers * ((layout.sessions - driver_id) // layout.drivers)


# Every GET a driver makes, as (token, path) per reader of the rotation. The history asks
# for one session a page, so a page holds the same at both sizes (each reader has 10
# sessions among a million and one among 10k): the first page is the newest, the deep page
# the oldest (OFFSET 9 among a million).
DRIVER_GETS = {
    "current": lambda layout, d: f"{API}/parking_sessions/current",
    "secured_parkings": lambda layout, d: f"{API}/secured_parkings",
    "smart_keys": lambda layout, d: f"{API}/smart_keys",
    "history, first page": lambda layout, d: f"{API}/parking_sessions?page_size=1",
    "history, deep page": lambda layout, d: (
        f"{API}/parking_sessions?page_size=1&page={sessions_of(layout, d)}"
    ),
    "detail": lambda layout, d: f"{API}/parking_sessions/{latest_session_of(layout, d)}",
}


def driver_requests(layout: Layout, endpoint: str, drivers: list[int]) -> list[tuple[str, str]]:
    path = DRIVER_GETS[endpoint]
    return [(raw_token(d), path(layout, d)) for d in drivers]
