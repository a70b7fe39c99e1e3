"""Prints the test vectors of docs/passage-record.md (its "Test vectors" section, as
Markdown) from the reference code: ``python scripts/passage_record_vectors.py``.

tests/test_passage_record_format.py runs it and checks that the document holds exactly
this text, so the vectors a firmware author copies are what the backend produces.
"""

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from smart_keys.access_commands import access_point_tag  # noqa: E402
from smart_keys.passage_records import (  # noqa: E402
    Acknowledgement,
    PassageRecord,
    TimeStatement,
    sign,
)
from smart_keys.signed_messages import (  # noqa: E402
    decode_base64url,
    key_id_for,
    raw_public_key,
)

PARKING_SEED = bytes(range(32))
BARRIER_SEED = bytes(range(32, 64))
BARRIER_MAC = "76:86:BB:DE:63:AD"
PASSED_AT = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def keys() -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    return (
        Ed25519PrivateKey.from_private_bytes(PARKING_SEED),
        Ed25519PrivateKey.from_private_bytes(BARRIER_SEED),
    )


def vectors() -> tuple[PassageRecord, Acknowledgement, TimeStatement]:
    parking, barrier = keys()
    parking_key_id = key_id_for(raw_public_key(parking.public_key()))
    barrier_key_id = key_id_for(raw_public_key(barrier.public_key()))
    tag = access_point_tag(BARRIER_MAC)
    record = PassageRecord(
        direction="entrance",
        barrier_key_id=barrier_key_id,
        access_point_tag=tag,
        smart_key_id=42,
        parking_session_id=7,
        command_counter=3,
        barrier_time=int(PASSED_AT.timestamp()),
        sequence=17,
    )
    acknowledgement = Acknowledgement(parking_key_id, barrier_key_id, tag, 17)
    statement = TimeStatement(parking_key_id, int(PASSED_AT.timestamp()) + 60, 120)
    return record, acknowledgement, statement


def _spaced(payload: bytes, sizes: list[int]) -> str:
    parts, offset = [], 0
    for size in sizes:
        parts.append(payload[offset : offset + size].hex())
        offset += size
    return " ".join(parts)


def _block(title: str, text: str) -> str:
    return f"{title}:\n\n```\n{text}\n```\n"


def markdown() -> str:
    parking, barrier = keys()
    record, acknowledgement, statement = vectors()
    texts = [sign(record, barrier), sign(acknowledgement, parking), sign(statement, parking)]
    layouts = [[1, 1, 1, 4, 4, 8, 8, 4, 4, 4], [1, 1, 4, 4, 4, 4], [1, 1, 4, 4, 2]]
    names = ["passage record", "acknowledgement", "time statement"]
    lines = [
        "Barrier private key seed (32 bytes): "
        f"`{BARRIER_SEED.hex()}`, public key "
        f"`{raw_public_key(barrier.public_key()).hex()}`, key id "
        f"`{record.barrier_key_id.hex()}`, MAC `{BARRIER_MAC}` (tag "
        f"`{record.access_point_tag.hex()}`).",
        "",
        "Parking private key seed: the access command's, "
        f"`{PARKING_SEED.hex()}`, public key "
        f"`{raw_public_key(parking.public_key()).hex()}`, key id "
        f"`{acknowledgement.parking_key_id.hex()}`.",
        "",
        f"The **passage record** of the access command's test vector (smart key 42, session 7, "
        f"counter 3) opening `{BARRIER_MAC}` at {record.barrier_time} "
        f"({PASSED_AT:%Y-%m-%dT%H:%M:%SZ}) by the barrier's clock, its 17th record. The "
        "**acknowledgement** of records up to 17 of that barrier key, and a **time "
        f"statement** issued at {statement.issued_at}, worth {statement.lifetime} s.",
        "",
    ]
    for name, text, layout in zip(names, texts, layouts, strict=True):
        raw = decode_base64url(text)
        payload, signature = raw[:-64], raw[-64:]
        lines.append(f"### The {name} ({len(raw)} bytes, {len(text)} characters)\n")
        lines.append(_block(f"Signed payload ({len(payload)} bytes)", _spaced(payload, layout)))
        lines.append(_block("Signature", signature.hex()))
        lines.append(_block("As sent", text))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
