"""Phones relay what barriers signed: ``POST passages``, idempotent per barrier key and
sequence number, answered record by record, with acknowledgements the barrier accepts."""

import base64
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError
from django.utils import timezone

from smart_keys.models import AccessEvent, AccessLogEntry, AccessPointKey, Direction, PassageRecord
from smart_keys.passage_records import decode_passage_record, sign
from smart_keys.passages import register_barrier_key
from smart_keys.reference_barrier import ReferenceBarrier
from tests.api import error_codes, field_errors, json_body
from tests.back_office import changelist_url, listed, staff_client
from tests.barriers import PASSAGES_URL, install_barrier, relay, statuses, upload
from tests.factories import OperatorFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=2)


@pytest.fixture
def entrance(parking):
    return parking.access_points.filter(direction=Direction.ENTRANCE).order_by("id").first()


@pytest.fixture
def barrier(entrance):
    return install_barrier(entrance)


def drive_in(client, parking, barrier, entrance) -> dict:
    """A driver starts a session and opens the entrance with its first command; the body."""
    body = json_body(
        client.post(
            "/api/car_driver/parking_sessions",
            {"secured_parking_id": parking.pk, "access_point_id": entrance.pk},
            format="json",
        ),
        201,
    )
    barrier.present(body["smart_key"]["access_command"], timezone.now())
    return body


def tampered(record: str, byte: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(record + "=" * (-len(record) % 4)))
    raw[byte] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


class TestRelaying:
    def test_another_drivers_phone_uploads_the_record_and_it_is_linked_to_the_session(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        session = drive_in(driver_client, parking, barrier, entrance)["parking_session"]

        body = upload(make_driver_client(), barrier.hand_over())

        assert body["results"] == [
            {
                "index": 0,
                "status": "accepted",
                "reason": None,
                "access_point_id": entrance.pk,
                "sequence": 1,
            }
        ]
        record = PassageRecord.objects.get()
        assert (record.parking_session_id, record.direction, record.command_counter) == (
            session["id"],
            Direction.ENTRANCE,
            1,
        )
        logged = AccessLogEntry.objects.get(event=AccessEvent.PASSAGE)
        assert (logged.parking_session_id, logged.access_point_id) == (session["id"], entrance.pk)

    def test_the_acknowledgement_makes_the_barrier_forget_what_the_backend_holds(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        drive_in(driver_client, parking, barrier, entrance)

        body = relay(make_driver_client(), barrier)

        (ack,) = body["acknowledgements"]
        assert (ack["access_point_id"], ack["mac_address"], ack["received_through"]) == (
            entrance.pk,
            entrance.mac_address,
            1,
        )
        assert ack["barrier_key_id"] == barrier.key_id.hex()
        assert barrier.hand_over() == []

    def test_an_acknowledgement_is_ignored_by_another_barrier(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        other_entrance = parking.access_points.filter(direction=Direction.ENTRANCE).last()
        other = install_barrier(other_entrance)
        drive_in(driver_client, parking, barrier, entrance)
        body = upload(make_driver_client(), barrier.hand_over())
        other.records = ["kept"]

        assert (
            other.acknowledge(body["acknowledgements"][0]["acknowledgement"], timezone.now()) == 0
        )
        assert other.records == ["kept"]


class TestIdempotence:
    def test_a_record_sent_again_is_a_duplicate_and_changes_nothing(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        drive_in(driver_client, parking, barrier, entrance)
        (record,) = barrier.hand_over()
        upload(make_driver_client(), [record])
        log_size = AccessLogEntry.objects.count()

        again = upload(make_driver_client(), [record, record])

        assert statuses(again) == [("duplicate", None), ("duplicate", None)]
        assert PassageRecord.objects.count() == 1
        assert AccessLogEntry.objects.count() == log_size
        assert again["acknowledgements"][0]["received_through"] == 1

    def test_out_of_order_records_are_acknowledged_only_without_a_gap(
        self, make_driver_client, parking, barrier, entrance
    ):
        for _ in range(3):
            drive_in(make_driver_client(), parking, barrier, entrance)
        first, second, third = barrier.hand_over()
        phone = make_driver_client()

        late = upload(phone, [third, second])
        assert statuses(late) == [("accepted", None), ("accepted", None)]
        assert late["acknowledgements"] == []
        assert barrier.acknowledge("", timezone.now()) == 0

        body = relay(phone, barrier)
        assert statuses(body) == [("accepted", None), ("duplicate", None), ("duplicate", None)]
        assert body["acknowledgements"][0]["received_through"] == 3
        assert barrier.hand_over() == []

    def test_the_database_keeps_one_record_per_barrier_key_and_sequence(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        drive_in(driver_client, parking, barrier, entrance)
        upload(make_driver_client(), barrier.hand_over())
        record = PassageRecord.objects.get()

        record.pk = None
        with pytest.raises(IntegrityError):
            record.save()


class TestRefusals:
    def test_a_record_from_an_unregistered_barrier_is_refused(
        self, make_driver_client, parking, entrance
    ):
        unknown = install_barrier(entrance, register=False)
        drive_in(make_driver_client(), parking, unknown, entrance)

        body = upload(make_driver_client(), unknown.hand_over())

        assert statuses(body) == [("refused", "unknown_barrier_key")]
        assert body["results"][0]["access_point_id"] is None
        assert not PassageRecord.objects.exists()

    def test_a_record_forged_with_another_key_under_the_barriers_key_id_is_refused(
        self, driver_client, make_driver_client, parking, barrier, entrance
    ):
        drive_in(driver_client, parking, barrier, entrance)
        (genuine,) = barrier.hand_over()
        fields = decode_passage_record(genuine)[0]
        forged = sign(replace(fields, sequence=2), Ed25519PrivateKey.generate())

        body = upload(make_driver_client(), [forged])

        assert statuses(body) == [("refused", "bad_signature")]
        assert not PassageRecord.objects.exists()

    @pytest.mark.parametrize("byte", [2, 11, 19, 27, 31, 35, 60])
    def test_a_tampered_record_is_refused(
        self, driver_client, make_driver_client, parking, barrier, entrance, byte
    ):
        drive_in(driver_client, parking, barrier, entrance)
        (record,) = barrier.hand_over()

        body = upload(make_driver_client(), [tampered(record, byte)])

        assert statuses(body)[0][0] == "refused"
        assert statuses(body)[0][1] in {"bad_signature", "unknown_barrier_key", "malformed"}
        assert not PassageRecord.objects.exists()

    def test_a_sequence_number_signed_twice_keeps_the_first_record(
        self, make_driver_client, parking, barrier, entrance
    ):
        drive_in(make_driver_client(), parking, barrier, entrance)
        upload(make_driver_client(), barrier.hand_over())
        barrier.sequence, barrier.records = 0, []  # a barrier that lost its counter
        drive_in(make_driver_client(), parking, barrier, entrance)

        body = upload(make_driver_client(), barrier.hand_over())

        assert statuses(body) == [("refused", "sequence_reused")]
        assert PassageRecord.objects.count() == 1

    @pytest.mark.parametrize("text", ["", "x" * 201, "not base64 !", "UAEB"])
    def test_malformed_records_are_refused_one_by_one(self, driver_client, text):
        response = driver_client.post(PASSAGES_URL, {"records": ["UAEB", text]}, format="json")

        if text in ("", "x" * 201):
            assert list(field_errors(response)) == ["records.1"]
        else:
            assert statuses(json_body(response, 200)) == [
                ("refused", "malformed"),
                ("refused", "malformed"),
            ]


class TestReplacedBarrierKeys:
    def test_the_old_keys_records_signed_before_the_replacement_are_taken(
        self, make_driver_client, parking, barrier, entrance, settings
    ):
        drive_in(make_driver_client(), parking, barrier, entrance)
        new = install_barrier(entrance)

        body = upload(make_driver_client(), barrier.hand_over())

        assert statuses(body) == [("accepted", None)]
        old = AccessPointKey.objects.get(public_key=barrier.public_key.hex())
        assert old.accepted_until == old.replaced_at + settings.BARRIER_KEY_OVERLAP
        assert AccessPointKey.objects.current().get(access_point=entrance).public_key == (
            new.public_key.hex()
        )

    def test_the_old_keys_records_signed_after_the_replacement_are_refused(
        self, make_driver_client, parking, barrier, entrance
    ):
        install_barrier(entrance)
        barrier.clock_offset = timedelta(seconds=5)  # signed after the replacement
        drive_in(make_driver_client(), parking, barrier, entrance)

        body = upload(make_driver_client(), barrier.hand_over())

        assert statuses(body) == [("refused", "barrier_key_replaced")]

    def test_a_compromised_keys_records_are_all_refused(
        self, make_driver_client, parking, barrier, entrance
    ):
        drive_in(make_driver_client(), parking, barrier, entrance)
        register_barrier_key(
            access_point=entrance,
            public_key=ReferenceBarrier("", "entrance", []).public_key.hex(),
            now=timezone.now(),
            compromised=True,
        )

        body = upload(make_driver_client(), barrier.hand_over())

        assert statuses(body) == [("refused", "barrier_key_replaced")]

    def test_the_old_keys_records_are_refused_after_the_overlap(
        self, make_driver_client, parking, barrier, entrance, settings
    ):
        drive_in(make_driver_client(), parking, barrier, entrance)
        install_barrier(entrance)
        AccessPointKey.objects.exclude(replaced_at=None).update(accepted_until=timezone.now())

        body = upload(make_driver_client(), barrier.hand_over())

        assert statuses(body) == [("refused", "barrier_key_replaced")]


class TestBadInput:
    @pytest.mark.parametrize(
        "body", [{}, {"records": []}, {"records": "UAEB"}, {"records": [1]}, {"records": [None]}]
    )
    def test_a_body_without_a_list_of_records_is_400(self, driver_client, body):
        response = driver_client.post(PASSAGES_URL, body, format="json")

        assert response.status_code == 400
        assert all(attr.startswith("records") for attr in field_errors(response))

    def test_more_records_than_the_cap_is_400_and_stores_nothing(self, driver_client, settings):
        response = driver_client.post(
            PASSAGES_URL,
            {"records": ["UAEB"] * (settings.PASSAGE_UPLOAD_MAX_RECORDS + 1)},
            format="json",
        )

        assert list(field_errors(response)) == ["records"]

    def test_unknown_fields_are_400(self, driver_client):
        response = driver_client.post(
            PASSAGES_URL, {"records": ["UAEB"], "driver": 1}, format="json"
        )

        assert list(field_errors(response)) == ["driver"]

    def test_without_a_token_it_is_401(self, api_client):
        response = api_client.post(PASSAGES_URL, {"records": ["UAEB"]}, format="json")

        assert response.status_code == 401
        assert error_codes(response) == ["not_authenticated"]


class TestBackOffice:
    def test_staff_see_their_parkings_passage_records_only(
        self, driver_client, make_driver_client, barrier, entrance
    ):
        parking = entrance.secured_parking
        parking.operator = OperatorFactory()
        parking.save()
        drive_in(driver_client, parking, barrier, entrance)
        upload(make_driver_client(), barrier.hand_over())

        own = staff_client(parking.operator).get(changelist_url(PassageRecord))
        other = staff_client(OperatorFactory()).get(changelist_url(PassageRecord))

        assert [r.sequence for r in listed(own)] == [1]
        assert listed(other) == []
