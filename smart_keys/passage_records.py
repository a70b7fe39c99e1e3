"""What barriers tell the backend, through whatever phone connects, and what the backend
tells them back: passage records (signed by the barrier's own key), acknowledgements and
time statements (signed by the parking's key). The byte layouts, the verification steps
and test vectors are in ``docs/passage-record.md``, written for barrier firmware; keep
the two in step (``scripts/passage_record_vectors.py`` prints the document's vectors).

Pure, like ``smart_keys.access_commands``: no database, no settings.
"""

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from smart_keys.signed_messages import (
    ACKNOWLEDGEMENT,
    DIRECTION_CODES,
    DIRECTIONS_BY_CODE,
    PASSAGE_RECORD,
    SIGNATURE_SIZE,
    TIME_STATEMENT,
    BarrierKey,
    MessageRefused,
    barrier_keys,
    check_signature,
    decode_base64url,
    encode_base64url,
    key_id_for,
    trusted_key,
)

VERSION = 1
# kind, version, direction, barrier key id, access point tag, smart key id, session id,
# command counter, barrier time, sequence
RECORD = struct.Struct(">BBB4s4sQQIII")
# kind, version, parking key id, barrier key id, access point tag, received through
ACK = struct.Struct(">BB4s4s4sI")
# kind, version, parking key id, issued at, lifetime
STATEMENT = struct.Struct(">BB4sIH")
RECORD_SIZE = RECORD.size + SIGNATURE_SIZE
MAX_SEQUENCE = 2**32 - 1


class PassageRecordRefused(MessageRefused):
    """Why the backend does not take a record as evidence."""


class BarrierMessageRefused(MessageRefused):
    """Why a barrier ignores an acknowledgement or a time statement."""


@dataclass(frozen=True)
class PassageRecord:
    """One opening, as the barrier signs it: which command opened it, where and when."""

    direction: str
    barrier_key_id: bytes
    access_point_tag: bytes
    smart_key_id: int
    parking_session_id: int
    command_counter: int
    barrier_time: int  # Unix seconds, by the barrier's clock
    sequence: int  # 1, 2, 3, … per barrier key, never reused

    def payload(self) -> bytes:
        return RECORD.pack(
            PASSAGE_RECORD,
            VERSION,
            DIRECTION_CODES[self.direction],
            self.barrier_key_id,
            self.access_point_tag,
            self.smart_key_id,
            self.parking_session_id,
            self.command_counter,
            self.barrier_time,
            self.sequence,
        )


@dataclass(frozen=True)
class Acknowledgement:
    """ "The backend holds every record of this barrier key up to ``received_through``":
    the barrier may forget them."""

    parking_key_id: bytes
    barrier_key_id: bytes
    access_point_tag: bytes
    received_through: int

    def payload(self) -> bytes:
        return ACK.pack(
            ACKNOWLEDGEMENT,
            VERSION,
            self.parking_key_id,
            self.barrier_key_id,
            self.access_point_tag,
            self.received_through,
        )


@dataclass(frozen=True)
class TimeStatement:
    """ "It was ``issued_at`` at the backend; this is worth ``lifetime`` seconds": a
    barrier's clock correction, carried by a phone."""

    parking_key_id: bytes
    issued_at: int  # Unix seconds, UTC
    lifetime: int  # seconds

    @property
    def not_after(self) -> int:
        return self.issued_at + self.lifetime

    def payload(self) -> bytes:
        return STATEMENT.pack(
            TIME_STATEMENT, VERSION, self.parking_key_id, self.issued_at, self.lifetime
        )


def sign(
    message: PassageRecord | Acknowledgement | TimeStatement, private_key: Ed25519PrivateKey
) -> str:
    """The message as sent: its payload, then its Ed25519 signature, in unpadded base64url."""
    payload = message.payload()
    return encode_base64url(payload + private_key.sign(payload))


def decode_passage_record(text: str | bytes) -> tuple[PassageRecord, bytes, bytes]:
    """Parse without verifying: (fields, signed payload, signature)."""
    raw = _unpack(text, RECORD, PASSAGE_RECORD, PassageRecordRefused)
    (_kind, _version, direction, key_id, tag, smart_key, session, counter, at, sequence) = (
        RECORD.unpack_from(raw)
    )
    if direction not in DIRECTIONS_BY_CODE:
        raise PassageRecordRefused("malformed", f"Unknown direction {direction}.")
    if sequence == 0:
        raise PassageRecordRefused("malformed", "Sequence numbers start at 1.")
    record = PassageRecord(
        direction=DIRECTIONS_BY_CODE[direction],
        barrier_key_id=key_id,
        access_point_tag=tag,
        smart_key_id=smart_key,
        parking_session_id=session,
        command_counter=counter,
        barrier_time=at,
        sequence=sequence,
    )
    return record, raw[: RECORD.size], raw[RECORD.size :]


def verify_passage_record(text: str | bytes, public_key: bytes | Ed25519PublicKey) -> PassageRecord:
    """The record, if ``public_key`` (the barrier's) signed it; else PassageRecordRefused."""
    record, payload, signature = decode_passage_record(text)
    (key,) = barrier_keys(public_key)
    if record.barrier_key_id != key.key_id:
        raise PassageRecordRefused("unknown_barrier_key", "Signed with another barrier key.")
    check_signature(key.public_key, signature, payload, PassageRecordRefused)
    return record


def verify_acknowledgement(
    text: str | bytes,
    parking_keys: bytes | BarrierKey | Sequence[BarrierKey],
    *,
    barrier_key: bytes,
    access_point_tag: bytes,
    now: datetime,
) -> Acknowledgement:
    """What a barrier checks before forgetting records: signed by a parking key it trusts,
    for its own key and tag."""
    raw = _unpack(text, ACK, ACKNOWLEDGEMENT, BarrierMessageRefused)
    _kind, _version, key_id, barrier_key_id, tag, through = ACK.unpack_from(raw)
    key = trusted_key(key_id, barrier_keys(parking_keys), now, BarrierMessageRefused)
    check_signature(key.public_key, raw[ACK.size :], raw[: ACK.size], BarrierMessageRefused)
    if barrier_key_id != key_id_for(barrier_key) or tag != access_point_tag:
        raise BarrierMessageRefused("wrong_barrier", "An acknowledgement for another barrier.")
    return Acknowledgement(key_id, barrier_key_id, tag, through)


def verify_time_statement(
    text: str | bytes,
    parking_keys: bytes | BarrierKey | Sequence[BarrierKey],
    *,
    now: datetime,
) -> TimeStatement:
    """A time statement signed by a parking key the barrier trusts (at its clock's ``now``).
    Whether and how far to move the clock is the barrier's rule (docs/passage-record.md)."""
    raw = _unpack(text, STATEMENT, TIME_STATEMENT, BarrierMessageRefused)
    _kind, _version, key_id, issued_at, lifetime = STATEMENT.unpack_from(raw)
    key = trusted_key(key_id, barrier_keys(parking_keys), now, BarrierMessageRefused)
    check_signature(
        key.public_key, raw[STATEMENT.size :], raw[: STATEMENT.size], BarrierMessageRefused
    )
    return TimeStatement(key_id, issued_at, lifetime)


def _unpack(
    text: str | bytes, layout: struct.Struct, kind: int, refused: type[MessageRefused]
) -> bytes:
    raw = decode_base64url(text, refused)
    if len(raw) != layout.size + SIGNATURE_SIZE:
        raise refused("malformed", f"A message of this kind is {layout.size + 64} bytes.")
    if raw[0] != kind:
        raise refused("malformed", f"Not this kind of message (byte 0 is {raw[0]:#04x}).")
    if raw[1] != VERSION:
        raise refused("unsupported_version", f"Unsupported version {raw[1]}.")
    return raw
