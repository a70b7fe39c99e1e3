"""Access commands: what a driver's phone sends a barrier over Bluetooth LE to open it.

A command is a short binary record signed with the parking's Ed25519 key and sent as
base64url text. Barriers hold only public keys, so one taken off the wall cannot forge
commands. The byte layout, the verification steps and a test vector are in
``docs/access-command.md``, written for barrier firmware; keep the two in step.

This module is pure (no database, no settings) so that it is the reference
implementation integrators can read and run.
"""

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from smart_keys.signed_messages import (
    DIRECTION_CODES,
    DIRECTIONS_BY_CODE,
    KEY_ID_SIZE,
    SIGNATURE_SIZE,
    BarrierKey,
    MessageRefused,
    barrier_keys,
    check_signature,
    decode_base64url,
    encode_base64url,
    key_id_for,
    raw_public_key,
    trusted_key,
)

__all__ = [
    "DIRECTION_CODES",
    "KEY_ID_SIZE",
    "SIGNATURE_SIZE",
    "AccessCommand",
    "AccessCommandRefused",
    "BarrierKey",
    "access_point_tag",
    "command_size",
    "decode_access_command",
    "key_id_for",
    "mac_bytes",
    "raw_public_key",
    "sign_access_command",
    "verify_access_command",
]

VERSION = 1
# version, direction, key id, smart key id, session id, counter, not before, lifetime, count
HEADER = struct.Struct(">BB4sQQIIHB")
TAG_SIZE = 4
MAX_ACCESS_POINTS = 255
MAX_COUNTER = 2**32 - 1
MAX_LIFETIME_SECONDS = 2**16 - 1
MAC_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2}$")


class AccessCommandRefused(MessageRefused):
    """Why a barrier must not open; ``reason`` is a stable code for logs and firmware."""


@dataclass(frozen=True)
class AccessCommand:
    """The signed fields of one command, as a barrier reads them."""

    direction: str
    key_id: bytes
    smart_key_id: int
    parking_session_id: int
    counter: int
    not_before: int  # Unix seconds, UTC
    lifetime: int  # seconds; valid while not_before <= t < not_before + lifetime
    access_point_tags: tuple[bytes, ...]

    @property
    def not_after(self) -> int:
        return self.not_before + self.lifetime

    def payload(self) -> bytes:
        """The bytes the signature covers: the header and the access point tags."""
        header = HEADER.pack(
            VERSION,
            DIRECTION_CODES[self.direction],
            self.key_id,
            self.smart_key_id,
            self.parking_session_id,
            self.counter,
            self.not_before,
            self.lifetime,
            len(self.access_point_tags),
        )
        return header + b"".join(self.access_point_tags)


def mac_bytes(mac_address: str | bytes) -> bytes:
    """``AA:BB:CC:DD:EE:FF`` (any separator or case) or 6 raw bytes → 6 bytes."""
    if isinstance(mac_address, bytes):
        if len(mac_address) != 6:
            raise ValueError("A MAC address is 6 bytes.")
        return mac_address
    if not MAC_ADDRESS.match(mac_address):
        raise ValueError(f"Not a MAC address: {mac_address!r}")
    return bytes.fromhex(re.sub(r"[:-]", "", mac_address))


def access_point_tag(mac_address: str | bytes) -> bytes:
    """First 4 bytes of SHA-256 of the barrier's 6-byte MAC: how a command names a barrier."""
    return hashlib.sha256(mac_bytes(mac_address)).digest()[:TAG_SIZE]


def command_size(access_points: int) -> tuple[int, int]:
    """(raw bytes, characters as sent) of a command naming ``access_points`` barriers."""
    raw = HEADER.size + TAG_SIZE * access_points + SIGNATURE_SIZE
    return raw, -(-raw * 4 // 3)


def sign_access_command(command: AccessCommand, private_key: Ed25519PrivateKey) -> str:
    """The command as sent: payload, then its Ed25519 signature, in unpadded base64url."""
    payload = command.payload()
    return encode_base64url(payload + private_key.sign(payload))


def decode_access_command(text: str | bytes) -> tuple[AccessCommand, bytes, bytes]:
    """Parse without verifying: (fields, signed payload, signature). Nothing in it is to be
    trusted before the signature is checked."""
    raw = decode_base64url(text, AccessCommandRefused)
    if len(raw) < HEADER.size + SIGNATURE_SIZE:
        raise AccessCommandRefused("malformed", "Too short to be an access command.")
    version, direction, key_id, smart_key, session, counter, not_before, lifetime, count = (
        HEADER.unpack_from(raw)
    )
    if version != VERSION:
        raise AccessCommandRefused("unsupported_version", f"Unsupported version {version}.")
    if len(raw) != HEADER.size + TAG_SIZE * count + SIGNATURE_SIZE:
        raise AccessCommandRefused("malformed", "The length does not match the access points.")
    if direction not in DIRECTIONS_BY_CODE:
        raise AccessCommandRefused("malformed", f"Unknown direction {direction}.")
    tags_end = HEADER.size + TAG_SIZE * count
    tags = tuple(raw[i : i + TAG_SIZE] for i in range(HEADER.size, tags_end, TAG_SIZE))
    command = AccessCommand(
        direction=DIRECTIONS_BY_CODE[direction],
        key_id=key_id,
        smart_key_id=smart_key,
        parking_session_id=session,
        counter=counter,
        not_before=not_before,
        lifetime=lifetime,
        access_point_tags=tags,
    )
    return command, raw[:tags_end], raw[tags_end:]


def verify_access_command(
    command: str | bytes,
    public_key: bytes | Ed25519PublicKey | BarrierKey | Sequence[BarrierKey],
    access_point_mac: str | bytes,
    now: datetime,
    last_counter: int | None,
    *,
    direction: str | None = None,
    leeway_seconds: int = 0,
) -> AccessCommand:
    """What a barrier does before opening; returns the command or raises AccessCommandRefused.

    ``public_key`` is the parking's key, or every key the barrier trusts (current, next
    and previous, each until its ``accepted_until``). ``last_counter`` is the highest
    counter this barrier accepted for the command's smart key (None: none yet); on success
    the barrier stores the returned ``counter`` as the new one. ``direction`` is the
    barrier's own, when it knows it. ``leeway_seconds`` absorbs a drifting barrier clock.
    """
    fields, payload, signature = decode_access_command(command)
    key = trusted_key(fields.key_id, barrier_keys(public_key), now, AccessCommandRefused)
    check_signature(key.public_key, signature, payload, AccessCommandRefused)
    if direction is not None and fields.direction != direction:
        raise AccessCommandRefused(
            "wrong_direction", f"An {fields.direction} command at an {direction} barrier."
        )
    _check_window(fields, int(now.timestamp()), leeway_seconds)
    if access_point_tag(access_point_mac) not in fields.access_point_tags:
        raise AccessCommandRefused("wrong_access_point", "Not valid at this access point.")
    if last_counter is not None and fields.counter <= last_counter:
        raise AccessCommandRefused(
            "replayed", f"Counter {fields.counter} is not above the last one, {last_counter}."
        )
    return fields


def _check_window(fields: AccessCommand, now: int, leeway: int) -> None:
    if now < fields.not_before - leeway:
        raise AccessCommandRefused("not_yet_valid", "The command is not valid yet.")
    if now >= fields.not_after + leeway:
        raise AccessCommandRefused("expired", "The command has expired.")
