"""The reference barrier does what the documents ask of firmware (the expected results of
docs/passage-record.md's vectors, the replay table, a full store), and ``manage.py
simulate_barrier`` runs it against the live API."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.utils import timezone

from parking.models import ParkingSession, State
from scripts.passage_record_vectors import BARRIER_MAC, BARRIER_SEED, keys, vectors
from smart_keys.access_commands import AccessCommandRefused
from smart_keys.passage_records import sign
from smart_keys.reference_barrier import ReferenceBarrier
from smart_keys.signed_messages import BarrierKey, raw_public_key
from tests.api import SESSIONS_URL, json_body
from tests.barriers import install_barrier, upload
from tests.factories import SecuredParkingFactory

MIDNIGHT = datetime(2026, 1, 1, tzinfo=UTC)


def vector_barrier(clock_reads: datetime, **fields) -> tuple[ReferenceBarrier, datetime]:
    """The vectors' barrier, its clock reading ``clock_reads`` at the true time it returns."""
    parking, _barrier = keys()
    true_now = MIDNIGHT + timedelta(minutes=2)
    barrier = ReferenceBarrier(
        mac_address=fields.pop("mac_address", BARRIER_MAC),
        direction="entrance",
        parking_keys=[BarrierKey(raw_public_key(parking.public_key()))],
        private_key=Ed25519PrivateKey.from_private_bytes(BARRIER_SEED),
        clock_offset=clock_reads - true_now,
        **fields,
    )
    return barrier, true_now


class TestTheDocumentedExpectations:
    def test_the_acknowledgement_frees_records_up_to_17_at_its_barrier_only(self):
        parking, _ = keys()
        acknowledgement = sign(vectors()[1], parking)
        here, now = vector_barrier(MIDNIGHT, sequence=18, records=[])
        here.records = [sign(vectors()[0], keys()[1])]
        elsewhere, _ = vector_barrier(MIDNIGHT, mac_address="76:86:BB:DE:63:AE")
        elsewhere.records = list(here.records)

        assert here.acknowledge(acknowledgement, now) == 1 and here.records == []
        assert elsewhere.acknowledge(acknowledgement, now) == 0

    @pytest.mark.parametrize(
        ("clock_reads", "after"),
        [
            ("00:00:00", "00:02:00"),
            ("00:03:00", "00:03:00"),
            ("00:10:00", "00:04:00"),
            ("00:30:00", "00:15:00"),
        ],
    )
    def test_the_time_statement_moves_the_clock_as_documented(self, clock_reads, after):
        parking, _ = keys()
        statement = sign(vectors()[2], parking)
        reads = datetime.fromisoformat(f"2026-01-01T{clock_reads}+00:00")
        barrier, now = vector_barrier(reads)

        assert barrier.apply_time_statement(statement, now)

        assert barrier.clock(now) == datetime.fromisoformat(f"2026-01-01T{after}+00:00")
        assert not barrier.apply_time_statement(statement, now)  # applied already
        assert barrier.clock(now) == datetime.fromisoformat(f"2026-01-01T{after}+00:00")


@pytest.mark.django_db
class TestTheBarrier:
    @pytest.fixture
    def parking(self):
        return SecuredParkingFactory(access_points=1)

    def start(self, client, parking) -> str:
        body = json_body(
            client.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json"), 201
        )
        return body["smart_key"]["access_command"]

    def test_a_replayed_command_is_refused_and_the_table_survives_a_restart(
        self, driver_client, parking
    ):
        barrier = install_barrier(parking.access_points.get(direction="entrance"))
        command = self.start(driver_client, parking)
        barrier.present(command, timezone.now())

        restarted = ReferenceBarrier.from_json(barrier.to_json())

        with pytest.raises(AccessCommandRefused) as refusal:
            restarted.present(command, timezone.now())
        assert refusal.value.reason == "replayed"
        assert restarted.hand_over() == barrier.hand_over()

    def test_a_full_store_keeps_opening_but_makes_no_record_and_no_gap(
        self, make_driver_client, parking
    ):
        barrier = install_barrier(parking.access_points.get(direction="entrance"))
        barrier.capacity = 1

        barrier.present(self.start(make_driver_client(), parking), timezone.now())
        assert barrier.present(self.start(make_driver_client(), parking), timezone.now()) == ""

        assert (barrier.sequence, len(barrier.hand_over())) == (1, 1)


@pytest.mark.django_db
class TestTheCommandLine:
    def run(self, *args) -> str:
        out = StringIO()
        call_command("simulate_barrier", *args, stdout=out)
        return out.getvalue()

    def test_a_journey_through_the_simulated_barrier(
        self, tmp_path, driver_client, make_driver_client
    ):
        parking = SecuredParkingFactory(access_points=1)
        entrance = parking.access_points.get(direction="entrance")
        state = str(tmp_path / "north.json")
        shown = json.loads(
            self.run("init", state, "--mac", entrance.mac_address.lower(), "--register")
        )
        assert shown["direction"] == "entrance" and shown["unacknowledged_records"] == 0
        body = json_body(
            driver_client.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json"),
            201,
        )

        assert "opened; record 1" in self.run("present", state, body["smart_key"]["access_command"])
        with pytest.raises(CommandError, match="replayed"):
            self.run("present", state, body["smart_key"]["access_command"])
        records = json.loads(self.run("records", state))["records"]
        answer = upload(make_driver_client(), records)
        assert self.run("acknowledge", state, answer["acknowledgements"][0]["acknowledgement"]) == (
            "forgot 1 records; 0 kept\n"
        )
        applied = self.run("time", state, answer["acknowledgements"][0]["time_statement"])
        assert applied.startswith("applied")
        session = ParkingSession.objects.get(pk=body["parking_session"]["id"])
        assert session.state == State.ACTIVE

    def test_init_needs_a_known_mac_or_keys_and_a_direction(self, tmp_path, db):
        with pytest.raises(CommandError):
            self.run("init", str(tmp_path / "b.json"), "--mac", "02:FF:FF:FF:FF:FF")
        key = raw_public_key(Ed25519PrivateKey.generate().public_key()).hex()
        shown = self.run(
            "init",
            str(tmp_path / "b.json"),
            "--mac",
            "02:FF:FF:FF:FF:FF",
            "--direction",
            "exit",
            "--public-key",
            key,
        )
        assert json.loads(shown)["direction"] == "exit"

    def test_a_missing_state_file_is_a_clear_error(self, tmp_path, db):
        with pytest.raises(CommandError, match="init"):
            self.run("show", str(tmp_path / "none.json"))
