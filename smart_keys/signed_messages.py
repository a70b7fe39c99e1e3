"""What every signed message between the backend, phones and barriers shares: unpadded
base64url text, Ed25519 signatures over everything before them, the first byte naming the
kind of message, and the parking's public keys as barriers trust them.

Kinds (byte 0): ``0x01`` access command (docs/access-command.md, where byte 0 is its
version), ``0x50`` passage record, ``0x41`` acknowledgement, ``0x54`` time statement
(docs/passage-record.md). A verifier refuses any other first byte, so a signature made
for one kind never verifies as another, even under the same key.

Pure: no database, no settings, so that firmware authors can read and run it.
"""

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ACCESS_COMMAND = 0x01
PASSAGE_RECORD = 0x50
ACKNOWLEDGEMENT = 0x41
TIME_STATEMENT = 0x54
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 4
DIRECTION_CODES = {"entrance": 1, "exit": 2}
DIRECTIONS_BY_CODE = {code: direction for direction, code in DIRECTION_CODES.items()}
BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class MessageRefused(Exception):
    """Why a message must not be acted on; ``reason`` is a stable code for logs and firmware."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class BarrierKey:
    """A public key a barrier trusts: the parking's current one, the next one a routine
    rotation published, or the previous one; each until its ``accepted_until``, if any."""

    public_key: bytes
    accepted_until: datetime | None = None

    @property
    def key_id(self) -> bytes:
        return key_id_for(self.public_key)


def key_id_for(public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256 of the raw 32-byte public key: which key signed a message."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_SIZE]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode_base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_base64url(text: str | bytes, refused: type[MessageRefused] = MessageRefused) -> bytes:
    """Unpadded base64url in its one canonical spelling, or ``refused("malformed")``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise refused("malformed", "Not base64url text.") from None
    if not BASE64URL.match(text) or len(text) % 4 == 1:
        raise refused("malformed", "Not unpadded base64url text.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise refused("malformed", "Not unpadded base64url text.") from None
    # Unused low bits of the last character must be zero: one message, one spelling.
    if encode_base64url(raw) != text:
        raise refused("malformed", "Not the canonical base64url spelling.")
    return raw


def barrier_keys(
    public_key: bytes | Ed25519PublicKey | BarrierKey | Sequence[BarrierKey],
) -> list[BarrierKey]:
    """The trusted keys, however the caller holds them."""
    if isinstance(public_key, BarrierKey):
        return [public_key]
    if isinstance(public_key, bytes):
        return [BarrierKey(public_key)]
    if isinstance(public_key, Ed25519PublicKey):
        return [BarrierKey(raw_public_key(public_key))]
    return list(public_key)


def trusted_key(
    key_id: bytes,
    keys: Sequence[BarrierKey],
    now: datetime,
    refused: type[MessageRefused] = MessageRefused,
) -> BarrierKey:
    """The trusted key whose id is ``key_id`` and whose trust has not ended at ``now``."""
    for key in keys:
        if key.key_id != key_id:
            continue
        if key.accepted_until is not None and now >= key.accepted_until:
            raise refused(
                "key_retired", f"Key {key_id.hex()} was rotated out and is no longer trusted."
            )
        return key
    raise refused("unknown_key", f"Signed with an unknown key {key_id.hex()}.")


def check_signature(
    public_key: bytes,
    signature: bytes,
    signed: bytes,
    refused: type[MessageRefused] = MessageRefused,
) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed)
    except InvalidSignature:
        raise refused("bad_signature", "The signature does not verify.") from None
