"""The passage record, acknowledgement and time statement formats (docs/passage-record.md):
the document's vectors are what the code prints, and each message verifies as documented."""

import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scripts.passage_record_vectors import BARRIER_MAC, keys, markdown, vectors
from smart_keys.access_commands import AccessCommandRefused, access_point_tag, verify_access_command
from smart_keys.passage_records import (
    RECORD_SIZE,
    BarrierMessageRefused,
    PassageRecordRefused,
    decode_passage_record,
    sign,
    verify_acknowledgement,
    verify_passage_record,
    verify_time_statement,
)
from smart_keys.signed_messages import BarrierKey, raw_public_key

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "passage-record.md"
NOW = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)


def public(private_key: Ed25519PrivateKey) -> bytes:
    return raw_public_key(private_key.public_key())


def flipped(text: str, bit: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[bit // 8] ^= 1 << (bit % 8)
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


class TestTheDocumentedVectors:
    def test_the_document_holds_what_the_script_prints(self):
        printed = subprocess.run(
            [sys.executable, "scripts/passage_record_vectors.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        assert printed == markdown()
        assert printed in DOC.read_text()

    def test_the_vectors_verify_as_documented(self):
        parking, barrier = keys()
        record, acknowledgement, statement = vectors()

        assert verify_passage_record(sign(record, barrier), public(barrier)) == record
        tag = access_point_tag(BARRIER_MAC)
        assert (
            verify_acknowledgement(
                sign(acknowledgement, parking),
                public(parking),
                barrier_key=public(barrier),
                access_point_tag=tag,
                now=NOW,
            )
            == acknowledgement
        )
        assert verify_time_statement(sign(statement, parking), public(parking), now=NOW) == (
            statement
        )
        assert len(sign(record, barrier)) == 138 and RECORD_SIZE == 103


class TestPassageRecords:
    def test_any_flipped_bit_is_refused(self):
        _parking, barrier = keys()
        text = sign(vectors()[0], barrier)

        for bit in range(RECORD_SIZE * 8):
            with pytest.raises(PassageRecordRefused) as refusal:
                verify_passage_record(flipped(text, bit), public(barrier))
            assert refusal.value.reason in {
                "bad_signature",
                "unknown_barrier_key",
                "malformed",
                "unsupported_version",
            }, bit

    def test_a_record_forged_with_another_key_under_the_barriers_key_id_is_refused(self):
        _parking, barrier = keys()
        forged = sign(vectors()[0], Ed25519PrivateKey.generate())

        with pytest.raises(PassageRecordRefused) as refusal:
            verify_passage_record(forged, public(barrier))
        assert refusal.value.reason == "bad_signature"

    @pytest.mark.parametrize("text", ["", "UA", "not base64!", "UAEB" * 40, "UAEBJPbtatsAV1wA="])
    def test_malformed_text_is_refused(self, text):
        with pytest.raises(PassageRecordRefused) as refusal:
            decode_passage_record(text)
        assert refusal.value.reason == "malformed"

    def test_no_kind_of_message_passes_for_another(self):
        parking, barrier = keys()
        record, acknowledgement, statement = vectors()
        parking_keys = [BarrierKey(public(parking))]
        ack_text = sign(acknowledgement, parking)
        statement_text = sign(statement, parking)

        with pytest.raises(AccessCommandRefused):
            verify_access_command(ack_text, parking_keys, BARRIER_MAC, NOW, None)
        with pytest.raises(AccessCommandRefused):
            verify_access_command(statement_text, parking_keys, BARRIER_MAC, NOW, None)
        with pytest.raises(BarrierMessageRefused):
            verify_time_statement(ack_text, parking_keys, now=NOW)
        with pytest.raises(PassageRecordRefused):
            verify_passage_record(statement_text, public(parking))


class TestWhatBarriersCheck:
    def test_an_acknowledgement_for_another_barrier_or_from_an_untrusted_key_is_refused(self):
        parking, barrier = keys()
        acknowledgement = sign(vectors()[1], parking)

        def reason(**overrides) -> str:
            arguments = {
                "barrier_key": public(barrier),
                "access_point_tag": access_point_tag(BARRIER_MAC),
                "now": NOW,
                **overrides,
            }
            parking_keys = arguments.pop("parking_keys", public(parking))
            with pytest.raises(BarrierMessageRefused) as refusal:
                verify_acknowledgement(acknowledgement, parking_keys, **arguments)
            return refusal.value.reason

        assert reason(access_point_tag=access_point_tag("76:86:BB:DE:63:AE")) == "wrong_barrier"
        assert reason(barrier_key=public(Ed25519PrivateKey.generate())) == "wrong_barrier"
        assert reason(parking_keys=public(Ed25519PrivateKey.generate())) == "unknown_key"
        retired = BarrierKey(public(parking), accepted_until=NOW - timedelta(seconds=1))
        assert reason(parking_keys=[retired]) == "key_retired"
