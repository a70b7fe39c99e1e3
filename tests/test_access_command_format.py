"""The signed access command format, as a barrier verifies it (docs/access-command.md)."""

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from smart_keys.access_commands import (
    MAX_COUNTER,
    MAX_LIFETIME_SECONDS,
    AccessCommand,
    AccessCommandRefused,
    BarrierKey,
    access_point_tag,
    command_size,
    decode_access_command,
    key_id_for,
    raw_public_key,
    sign_access_command,
    verify_access_command,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "access-command.md"
ENTRANCE_A = "76:86:BB:DE:63:AD"
ENTRANCE_B = "76:86:BB:DE:63:AE"
EXIT = "76:86:BB:DE:63:AF"
ISSUED_AT = datetime(2026, 1, 1, tzinfo=UTC)
ONE_MINUTE_IN = ISSUED_AT + timedelta(minutes=1)
VECTOR_SEED = bytes(range(32))


def key_pair(seed: bytes = VECTOR_SEED) -> tuple[Ed25519PrivateKey, bytes]:
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    return private_key, raw_public_key(private_key.public_key())


def a_command(public_key: bytes, **changes) -> AccessCommand:
    fields = {
        "direction": "entrance",
        "key_id": key_id_for(public_key),
        "smart_key_id": 42,
        "parking_session_id": 7,
        "counter": 3,
        "not_before": int(ISSUED_AT.timestamp()),
        "lifetime": 120,
        "access_point_tags": (access_point_tag(ENTRANCE_A), access_point_tag(ENTRANCE_B)),
    }
    return AccessCommand(**{**fields, **changes})


def signed(**changes) -> tuple[str, bytes]:
    private_key, public_key = key_pair()
    return sign_access_command(a_command(public_key, **changes), private_key), public_key


def refusal(command, public_key, mac=ENTRANCE_A, now=ONE_MINUTE_IN, last_counter=None, **kw):
    with pytest.raises(AccessCommandRefused) as refused:
        verify_access_command(command, public_key, mac, now, last_counter, **kw)
    return refused.value.reason


class TestTheDocumentedTestVector:
    def test_the_code_produces_the_command_printed_in_the_document(self):
        command, public_key = signed()
        doc = DOC.read_text()

        assert f"\n{command}\n" in doc
        assert public_key.hex() in doc
        assert key_id_for(public_key).hex() in doc

    def test_the_documented_expectations_hold(self):
        command, public_key = signed()

        opened = verify_access_command(
            command, public_key, ENTRANCE_A, ONE_MINUTE_IN, 2, direction="entrance"
        )
        assert opened.counter == 3 and opened.smart_key_id == 42
        assert refusal(command, public_key, last_counter=3) == "replayed"
        assert refusal(command, public_key, mac=EXIT) == "wrong_access_point"
        assert refusal(command, public_key, direction="exit") == "wrong_direction"
        assert refusal(command, public_key, now=ISSUED_AT + timedelta(minutes=2)) == "expired"
        assert refusal(command, public_key, now=ISSUED_AT - timedelta(seconds=1)) == (
            "not_yet_valid"
        )

    def test_the_one_barrier_vector_is_what_the_code_produces_and_behaves_as_documented(self):
        issued = ISSUED_AT + timedelta(minutes=15)
        command, public_key = signed(
            direction="exit",
            counter=4,
            not_before=int(issued.timestamp()),
            lifetime=1200,
            access_point_tags=(access_point_tag(EXIT),),
        )
        last_moment = issued + timedelta(seconds=1199)

        assert f"\n{command}\n" in DOC.read_text()
        assert len(command) == 135 == command_size(1)[1]
        opened = verify_access_command(command, public_key, EXIT, last_moment, 3, direction="exit")
        assert opened.counter == 4
        assert refusal(command, public_key, mac="76:86:BB:DE:63:B0", now=issued) == (
            "wrong_access_point"
        )
        assert refusal(command, public_key, mac=EXIT, now=issued + timedelta(seconds=1200)) == (
            "expired"
        )

    def test_the_documented_size_table_is_the_real_size(self):
        command, _public_key = signed()
        table = dict(re.findall(r"^\| (\d+) \| \d+ \| \**(\d+)\**", DOC.read_text(), re.M))

        assert len(command) == 140 == command_size(2)[1]
        assert table == {str(n): str(command_size(n)[1]) for n in (1, 2, 3, 4, 5, 6, 8)}
        assert command_size(5)[1] <= 160


class TestGenuineCommands:
    def test_verify_at_each_named_barrier_within_the_window(self):
        command, public_key = signed()

        for mac in (ENTRANCE_A, ENTRANCE_B.lower().replace(":", "-")):
            for moment in (ISSUED_AT, ISSUED_AT + timedelta(seconds=119.9)):
                assert verify_access_command(command, public_key, mac, moment, None).counter == 3

    def test_verify_with_the_key_as_object_or_in_a_keyring(self):
        command, public_key = signed()
        _other_private, other_public = key_pair(bytes(32))
        keyring = [BarrierKey(other_public), BarrierKey(public_key)]

        assert verify_access_command(command, keyring, ENTRANCE_A, ONE_MINUTE_IN, None)
        private_key = Ed25519PrivateKey.from_private_bytes(VECTOR_SEED)
        assert verify_access_command(
            command, private_key.public_key(), ENTRANCE_A, ONE_MINUTE_IN, None
        )

    def test_a_leeway_absorbs_a_drifting_barrier_clock(self):
        command, public_key = signed()
        late = ISSUED_AT + timedelta(seconds=125)

        assert refusal(command, public_key, now=late) == "expired"
        assert verify_access_command(command, public_key, ENTRANCE_A, late, None, leeway_seconds=30)


class TestRefusals:
    def test_a_command_forged_with_another_key_under_the_same_key_id_is_refused(self):
        _private_key, public_key = key_pair()
        forger = Ed25519PrivateKey.generate()
        forged = sign_access_command(a_command(public_key), forger)

        assert refusal(forged, public_key) == "bad_signature"

    def test_a_command_from_an_unknown_key_is_refused(self):
        forger = Ed25519PrivateKey.generate()
        forged = sign_access_command(a_command(raw_public_key(forger.public_key())), forger)
        _private_key, public_key = key_pair()

        assert refusal(forged, public_key) == "unknown_key"

    def test_flipping_any_single_bit_of_the_signed_bytes_is_refused(self):
        command, public_key = signed()
        raw = base64.urlsafe_b64decode(command + "=" * (-len(command) % 4))

        for bit in range(len(raw) * 8):
            tampered = bytearray(raw)
            tampered[bit // 8] ^= 1 << (bit % 8)
            text = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
            reason = refusal(text, public_key)
            assert reason in {
                "bad_signature",
                "unknown_key",
                "malformed",
                "unsupported_version",
            }, (bit, reason)

    def test_flipping_any_single_bit_of_the_text_as_sent_is_refused(self):
        command, public_key = signed()
        sent = command.encode("ascii")

        for bit in range(len(sent) * 8):
            tampered = bytearray(sent)
            tampered[bit // 8] ^= 1 << (bit % 8)
            refusal(bytes(tampered), public_key)

    def test_expired_and_not_yet_valid_commands_are_refused(self):
        command, public_key = signed()

        assert refusal(command, public_key, now=ISSUED_AT + timedelta(seconds=120)) == "expired"
        assert refusal(command, public_key, now=ISSUED_AT + timedelta(days=1)) == "expired"
        assert refusal(command, public_key, now=ISSUED_AT - timedelta(seconds=1)) == (
            "not_yet_valid"
        )

    def test_a_barrier_the_command_does_not_name_refuses_it(self):
        command, public_key = signed()

        assert refusal(command, public_key, mac=EXIT) == "wrong_access_point"
        assert refusal(command, public_key, mac="02:00:00:00:00:01") == "wrong_access_point"

    def test_the_wrong_direction_is_refused(self):
        entrance, public_key = signed()
        exit_command, _ = signed(direction="exit", access_point_tags=(access_point_tag(EXIT),))

        assert refusal(entrance, public_key, direction="exit") == "wrong_direction"
        assert refusal(exit_command, public_key, mac=EXIT, direction="entrance") == (
            "wrong_direction"
        )
        assert verify_access_command(
            exit_command, public_key, EXIT, ONE_MINUTE_IN, None, direction="exit"
        )

    def test_a_replayed_command_is_refused(self):
        command, public_key = signed(counter=5)

        assert verify_access_command(command, public_key, ENTRANCE_A, ONE_MINUTE_IN, 4)
        assert refusal(command, public_key, last_counter=5) == "replayed"
        assert refusal(command, public_key, last_counter=9) == "replayed"

    def test_the_previous_key_verifies_during_the_overlap_and_not_after(self):
        command, old_public_key = signed()
        _new_private, new_public_key = key_pair(bytes(32))
        overlap_ends = ISSUED_AT + timedelta(seconds=90)
        keyring = [BarrierKey(new_public_key), BarrierKey(old_public_key, overlap_ends)]

        assert verify_access_command(command, keyring, ENTRANCE_A, ONE_MINUTE_IN, None)
        after = overlap_ends + timedelta(seconds=1)
        assert refusal(command, keyring, now=after) == "key_retired"

    @pytest.mark.parametrize(
        "text",
        ["", "AQ", "A", "====", "not base64!", "AQFW R1qn", "\u00e9t\u00e9", "AQFWR1qn" * 40],
    )
    def test_garbage_is_malformed(self, text):
        _private_key, public_key = key_pair()

        assert refusal(text, public_key) in {"malformed", "unsupported_version"}

    def test_padding_and_non_canonical_spellings_are_refused(self):
        command, public_key = signed()
        # 105 bytes encode to 140 characters with no unused bits; 101 bytes leave 2.
        short, _ = signed(access_point_tags=(access_point_tag(ENTRANCE_A),))
        last = short[-1]
        sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        index = sibling.index(last)
        non_canonical = short[:-1] + sibling[index | 1]

        assert refusal(command + "==", public_key) == "malformed"
        assert non_canonical != short
        assert refusal(non_canonical, public_key) == "malformed"

    def test_a_later_version_is_refused(self):
        command, public_key = signed()
        raw = bytearray(base64.urlsafe_b64decode(command + "=" * (-len(command) % 4)))
        raw[0] = 2
        text = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

        assert refusal(text, public_key) == "unsupported_version"


MACS = st.binary(min_size=6, max_size=6)
FIELDS = st.fixed_dictionaries(
    {
        "direction": st.sampled_from(["entrance", "exit"]),
        "smart_key_id": st.integers(0, 2**64 - 1),
        "parking_session_id": st.integers(0, 2**64 - 1),
        "counter": st.integers(0, MAX_COUNTER),
        "not_before": st.integers(0, 2**32 - 1),
        "lifetime": st.integers(1, MAX_LIFETIME_SECONDS),
    }
)
PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(VECTOR_SEED)
PUBLIC_KEY = raw_public_key(PRIVATE_KEY.public_key())


class TestProperties:
    @given(fields=FIELDS, macs=st.lists(MACS, min_size=1, max_size=12, unique=True))
    def test_every_signed_command_decodes_to_its_fields_and_verifies(self, fields, macs):
        command = AccessCommand(
            key_id=key_id_for(PUBLIC_KEY),
            access_point_tags=tuple(access_point_tag(mac) for mac in macs),
            **fields,
        )
        text = sign_access_command(command, PRIVATE_KEY)
        inside = datetime.fromtimestamp(command.not_before, UTC)

        assert decode_access_command(text)[0] == command
        assert len(text) == command_size(len(macs))[1]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
        for mac in macs:
            verified = verify_access_command(
                text, PUBLIC_KEY, mac, inside, command.counter - 1 if command.counter else None
            )
            assert verified == command

    @given(data=st.binary(max_size=200))
    def test_arbitrary_bytes_are_refused_and_never_crash(self, data):
        text = base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        with pytest.raises(AccessCommandRefused):
            verify_access_command(text, PUBLIC_KEY, ENTRANCE_A, ONE_MINUTE_IN, None)

    @given(text=st.text(max_size=200))
    def test_arbitrary_text_is_refused_and_never_crashes(self, text):
        with pytest.raises(AccessCommandRefused):
            verify_access_command(text, PUBLIC_KEY, ENTRANCE_A, ONE_MINUTE_IN, None)
