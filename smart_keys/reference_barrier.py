"""A barrier in software that does what docs/access-command.md and docs/passage-record.md
tell firmware to do: verify access commands with the parking's keys, keep the replay
table, sign a passage record for every opening with its own key, hand unacknowledged
records to whatever phone connects, forget them on a valid acknowledgement, and correct
its clock from time statements.

The tests drive it end to end through the HTTP API; ``python manage.py simulate_barrier``
runs it from the command line, its state in a JSON file, so integrators can test their
apps against it. Pure: no database, no settings.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smart_keys.access_commands import (
    MAX_LIFETIME_SECONDS,
    AccessCommand,
    AccessCommandRefused,
    access_point_tag,
    decode_access_command,
    verify_access_command,
)
from smart_keys.passage_records import (
    MAX_SEQUENCE,
    BarrierMessageRefused,
    PassageRecord,
    decode_passage_record,
    sign,
    verify_acknowledgement,
    verify_time_statement,
)
from smart_keys.signed_messages import BarrierKey, key_id_for, raw_public_key

# A time statement moves a clock back by at most this much (docs/passage-record.md).
MAX_BACKWARD_STEP = timedelta(seconds=900)


@dataclass
class ReferenceBarrier:
    """One barrier. ``clock_offset`` is how far its clock is from the true time (what
    ``now`` the methods are given): a barrier 10 minutes ahead has +10 minutes."""

    mac_address: str
    direction: str
    parking_keys: list[BarrierKey]
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    clock_offset: timedelta = timedelta(0)
    leeway_seconds: int = 30
    capacity: int = 1000
    sequence: int = 0
    # smart key id → (last counter accepted, barrier time it was stored at)
    replay_table: dict[int, tuple[int, int]] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    last_statement_issued_at: int = 0

    @property
    def public_key(self) -> bytes:
        return raw_public_key(self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        return key_id_for(self.public_key)

    @property
    def tag(self) -> bytes:
        return access_point_tag(self.mac_address)

    def clock(self, now: datetime) -> datetime:
        return now + self.clock_offset

    def present(self, command: str, now: datetime) -> str:
        """A phone writes ``command``: open (return the new passage record) or raise
        AccessCommandRefused, as verification step by step says."""
        at = self.clock(now)
        self._forget_old_counters(at)
        last = self.replay_table.get(self._smart_key_of(command), (None, 0))[0]
        fields = verify_access_command(
            command,
            self.parking_keys,
            self.mac_address,
            at,
            last,
            direction=self.direction,
            leeway_seconds=self.leeway_seconds,
        )
        self.replay_table[fields.smart_key_id] = (fields.counter, int(at.timestamp()))
        return self._record(fields, at)

    def hand_over(self) -> list[str]:
        """What a connecting phone is given: every unacknowledged record, oldest first."""
        return list(self.records)

    def acknowledge(self, acknowledgement: str, now: datetime) -> int:
        """Forget the records the backend says it holds; how many were forgotten. An
        acknowledgement that does not verify, or is for another barrier, is ignored."""
        try:
            ack = verify_acknowledgement(
                acknowledgement,
                self.parking_keys,
                barrier_key=self.public_key,
                access_point_tag=self.tag,
                now=self.clock(now),
            )
        except BarrierMessageRefused:
            return 0
        kept = [r for r in self.records if _sequence(r) > ack.received_through]
        forgotten = len(self.records) - len(kept)
        self.records = kept
        return forgotten

    def apply_time_statement(self, statement: str, now: datetime) -> bool:
        """Correct the clock as docs/passage-record.md says; whether the statement counted."""
        at = self.clock(now)
        try:
            fields = verify_time_statement(statement, self.parking_keys, now=at)
        except BarrierMessageRefused:
            return False
        if fields.issued_at <= self.last_statement_issued_at:
            return False
        self.last_statement_issued_at = fields.issued_at
        earliest = _at(fields.issued_at)
        latest = _at(fields.not_after)
        if at < earliest:
            self.clock_offset += earliest - at
        elif at > latest:
            self.clock_offset -= min(at - latest, MAX_BACKWARD_STEP)
        return True

    def _record(self, command: AccessCommand, at: datetime) -> str:
        if len(self.records) >= self.capacity or self.sequence >= MAX_SEQUENCE:
            return ""  # opens all the same, but the store is full: no record, no gap
        # A real barrier writes the sequence to flash before it opens.
        self.sequence += 1
        record = sign(
            PassageRecord(
                direction=command.direction,
                barrier_key_id=self.key_id,
                access_point_tag=self.tag,
                smart_key_id=command.smart_key_id,
                parking_session_id=command.parking_session_id,
                command_counter=command.counter,
                barrier_time=int(at.timestamp()),
                sequence=self.sequence,
            ),
            self.private_key,
        )
        self.records.append(record)
        return record

    def _forget_old_counters(self, at: datetime) -> None:
        # Any command such an entry would refuse has expired: lifetimes fit in 16 bits.
        oldest = int(at.timestamp()) - MAX_LIFETIME_SECONDS - self.leeway_seconds
        self.replay_table = {k: v for k, v in self.replay_table.items() if v[1] >= oldest}

    def _smart_key_of(self, command: str) -> int:
        try:
            return decode_access_command(command)[0].smart_key_id
        except AccessCommandRefused:
            return -1  # verification refuses it with the reason

    # The command line keeps the barrier in a file between runs.

    def to_json(self) -> str:
        return json.dumps(
            {
                "mac_address": self.mac_address,
                "direction": self.direction,
                "parking_keys": [
                    {
                        "public_key": key.public_key.hex(),
                        "accepted_until": key.accepted_until.isoformat()
                        if key.accepted_until
                        else None,
                    }
                    for key in self.parking_keys
                ],
                "private_key": self.private_key.private_bytes_raw().hex(),
                "clock_offset_seconds": self.clock_offset.total_seconds(),
                "leeway_seconds": self.leeway_seconds,
                "capacity": self.capacity,
                "sequence": self.sequence,
                "replay_table": {str(k): list(v) for k, v in self.replay_table.items()},
                "records": self.records,
                "last_statement_issued_at": self.last_statement_issued_at,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> "ReferenceBarrier":
        state: dict[str, Any] = json.loads(text)
        return cls(
            mac_address=state["mac_address"],
            direction=state["direction"],
            parking_keys=[
                BarrierKey(
                    bytes.fromhex(key["public_key"]),
                    datetime.fromisoformat(key["accepted_until"])
                    if key["accepted_until"]
                    else None,
                )
                for key in state["parking_keys"]
            ],
            private_key=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(state["private_key"])),
            clock_offset=timedelta(seconds=state["clock_offset_seconds"]),
            leeway_seconds=state["leeway_seconds"],
            capacity=state["capacity"],
            sequence=state["sequence"],
            replay_table={int(k): (v[0], v[1]) for k, v in state["replay_table"].items()},
            records=list(state["records"]),
            last_statement_issued_at=state["last_statement_issued_at"],
        )


def _sequence(record: str) -> int:
    return decode_passage_record(record)[0].sequence


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
