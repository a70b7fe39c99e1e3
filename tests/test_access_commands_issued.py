"""The access commands the backend issues, as a barrier verifies them: one on every try,
refused once replayed, expired or out of their session; each parking's key pairs and their
rotation as barriers see it; the access log; and the management commands that export and
check them. The format itself is in test_access_command_format.py, the rotation's own rules
in test_key_rotation.py, the back-office pages in the test_admin_* files."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.datetimes import iso_seconds
from parking.demo_data import seed_demo
from parking.models import ParkingSession, State
from smart_keys.access_commands import (
    AccessCommandRefused,
    decode_access_command,
    verify_access_command,
)
from smart_keys.models import (
    AccessEvent,
    AccessLogEntry,
    AccessResult,
    Direction,
    KeyPairState,
    ParkingKeyPair,
)
from smart_keys.selectors import trusted_barrier_keys
from smart_keys.services import (
    current_key_pair,
    rotate_leaked_key_pair,
    rotate_parking_key_pair,
    switch_to_next_key_pair,
)
from tests.api import SMART_KEYS_URL, act, new_session, session_action, session_url
from tests.factories import SecuredParkingFactory

pytestmark = pytest.mark.django_db


def command_of(body: dict) -> str:
    return body["smart_key"]["access_command"]


def barrier_macs(parking, direction: Direction) -> list[str]:
    return list(
        parking.access_points.filter(direction=direction).values_list("mac_address", flat=True)
    )


def verify(command: str, parking, mac: str, *, now=None, last_counter=None, **kwargs):
    now = now or timezone.now()
    keys = trusted_barrier_keys(now=now, secured_parking_id=parking.pk)
    return verify_access_command(command, keys, mac, now, last_counter, **kwargs)


def refused_reason(command: str, parking, mac: str, **kwargs) -> str:
    with pytest.raises(AccessCommandRefused) as refusal:
        verify(command, parking, mac, **kwargs)
    return refusal.value.reason


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=2, entrance_tries=3, exit_tries=3)


class TestCommandsOnTheJourney:
    def test_the_first_command_opens_the_entrance_barriers_of_this_session(
        self, driver_client, parking
    ):
        body = new_session(driver_client, parking)
        command = command_of(body)

        for mac in barrier_macs(parking, Direction.ENTRANCE):
            fields = verify(command, parking, mac, direction="entrance")
            assert fields.smart_key_id == body["smart_key"]["id"]
            assert fields.parking_session_id == body["parking_session"]["id"]
            assert fields.counter == 1
        assert len(command) <= 160
        exit_mac = barrier_macs(parking, Direction.EXIT)[0]
        assert refused_reason(command, parking, exit_mac) == "wrong_access_point"

    def test_the_command_is_valid_for_two_minutes_only(self, driver_client, parking, settings):
        command = command_of(new_session(driver_client, parking))
        fields = decode_access_command(command)[0]
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        later = timezone.now() + settings.ACCESS_COMMAND_VALIDITY + timedelta(seconds=1)

        assert fields.lifetime == 120
        assert refused_reason(command, parking, mac, now=later) == "expired"

    def test_every_try_issues_a_new_command_with_a_higher_counter(self, driver_client, parking):
        first = new_session(driver_client, parking)
        session_id = first["parking_session"]["id"]
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]

        commands = [command_of(first)] + [
            command_of(act(driver_client, session_id, "entrance_try")) for _ in range(3)
        ]

        assert len(set(commands)) == 4
        counters = [verify(command, parking, mac).counter for command in commands]
        assert counters == [1, 2, 3, 4]
        # A barrier that opened for the latest refuses every earlier one.
        for command in commands:
            assert refused_reason(command, parking, mac, last_counter=4) == "replayed"

    def test_heading_out_turns_the_command_to_the_exit_barriers(self, driver_client, parking):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        act(driver_client, session_id, "enter")

        exiting = act(driver_client, session_id, "exit")
        tried = act(driver_client, session_id, "exit_try")

        entrance_mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        exit_mac = barrier_macs(parking, Direction.EXIT)[0]
        for body in (exiting, tried):
            assert verify(command_of(body), parking, exit_mac, direction="exit")
            assert refused_reason(command_of(body), parking, exit_mac, direction="entrance") == (
                "wrong_direction"
            )
            assert refused_reason(command_of(body), parking, entrance_mac) == "wrong_access_point"

    @pytest.mark.parametrize("closing", ["cancel", "finalize"])
    def test_a_closed_session_serves_no_command_and_its_last_one_expires(
        self, driver_client, parking, closing, settings
    ):
        body = new_session(driver_client, parking)
        session_id = body["parking_session"]["id"]
        if closing == "finalize":
            act(driver_client, session_id, "enter")
            body = act(driver_client, session_id, "exit")
        last_command = command_of(body)

        closed = act(driver_client, session_id, closing)

        assert command_of(closed) == ""
        assert command_of(driver_client.get(session_url(session_id)).json()) == ""
        assert driver_client.get(SMART_KEYS_URL).json() == []
        for action in ("entrance_try", "exit_try"):
            assert session_action(driver_client, session_id, action).status_code == 409
        direction = Direction.EXIT if closing == "finalize" else Direction.ENTRANCE
        validity = (
            settings.OFFLINE_EXIT_COMMAND_VALIDITY
            if closing == "finalize"
            else settings.ACCESS_COMMAND_VALIDITY
        )
        later = timezone.now() + validity
        for mac in barrier_macs(parking, direction):
            assert refused_reason(last_command, parking, mac, now=later) == "expired"

    def test_an_entrance_command_never_outlives_the_entering_deadline(
        self, driver_client, parking, settings
    ):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        deadline_in = timedelta(seconds=30)
        started = timezone.now() - settings.PARKING_ENTERING_TIMEOUT + deadline_in
        ParkingSession.objects.filter(pk=session_id).update(start_time=started)

        command = command_of(act(driver_client, session_id, "entrance_try"))

        fields = decode_access_command(command)[0]
        assert fields.lifetime <= 30
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        after_deadline = started + settings.PARKING_ENTERING_TIMEOUT
        assert refused_reason(command, parking, mac, now=after_deadline) == "expired"

    def test_one_parkings_command_does_not_open_another_parking(self, driver_client, parking):
        command = command_of(new_session(driver_client, parking))
        other = SecuredParkingFactory(access_points=1)
        current_key_pair(secured_parking_id=other.pk, now=timezone.now())

        reason = refused_reason(command, other, barrier_macs(other, Direction.ENTRANCE)[0])

        assert reason == "unknown_key"


class TestKeyPairs:
    def test_a_parking_gets_one_key_pair_on_first_use_stored_encrypted(
        self, driver_client, parking
    ):
        new_session(driver_client, parking)

        key_pair = ParkingKeyPair.objects.get(secured_parking=parking)
        private_raw = key_pair.private_key().private_bytes_raw()
        assert key_pair.is_current
        assert private_raw.hex() not in key_pair.encrypted_private_key
        assert len(key_pair.encrypted_private_key) > 64
        assert key_pair.barrier_key().public_key.hex() == key_pair.public_key

    def test_private_keys_cannot_be_read_with_another_encryption_key(self, parking, settings):
        key_pair = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        settings.ACCESS_COMMAND_KEY_ENCRYPTION_KEY = ["a-new-key"]
        with pytest.raises(ImproperlyConfigured):
            key_pair.private_key()

        settings.ACCESS_COMMAND_KEY_ENCRYPTION_KEY = ["a-new-key", settings.SECRET_KEY]
        assert key_pair.private_key()

    def test_a_command_signed_after_a_routine_rotation_verifies_with_the_keys_barriers_have(
        self, driver_client, parking
    ):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        provisioned = trusted_barrier_keys(now=timezone.now(), secured_parking_id=parking.pk)
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        command = command_of(act(driver_client, session_id, "entrance_try"))

        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        assert verify_access_command(command, provisioned, mac, timezone.now(), None)

    def test_once_the_delay_is_up_commands_are_signed_with_the_key_published_before(
        self, driver_client, parking, settings
    ):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        settings.ACCESS_COMMAND_KEY_ROTATION_DELAY = timedelta(0)
        new_pair = rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        provisioned = trusted_barrier_keys(now=timezone.now(), secured_parking_id=parking.pk)

        command = command_of(act(driver_client, session_id, "entrance_try"))

        assert decode_access_command(command)[0].key_id.hex() == new_pair.key_id
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        assert verify_access_command(command, provisioned, mac, timezone.now(), None)

    def test_after_the_switch_old_commands_verify_during_the_overlap_only(
        self, driver_client, parking, settings
    ):
        old_command = command_of(new_session(driver_client, parking))
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        now = timezone.now()
        old_pair = current_key_pair(secured_parking_id=parking.pk, now=now)
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        new_pair = switch_to_next_key_pair(secured_parking_id=parking.pk, now=now)

        assert verify(old_command, parking, mac, now=now + timedelta(seconds=30))
        after_overlap = now + settings.ACCESS_COMMAND_KEY_OVERLAP
        # Past the overlap the parking's trusted keys leave the old one out altogether.
        assert refused_reason(old_command, parking, mac, now=after_overlap) == "unknown_key"
        old_pair.refresh_from_db()
        with pytest.raises(AccessCommandRefused) as refusal:
            verify_access_command(
                old_command,
                [old_pair.barrier_key(), new_pair.barrier_key()],
                mac,
                after_overlap,
                None,
                leeway_seconds=10**6,
            )
        assert refusal.value.reason == "key_retired"

    def test_commands_after_the_switch_are_signed_with_the_new_key(self, driver_client, parking):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        new_pair = switch_to_next_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        command = command_of(act(driver_client, session_id, "entrance_try"))

        assert decode_access_command(command)[0].key_id.hex() == new_pair.key_id
        assert verify(command, parking, barrier_macs(parking, Direction.ENTRANCE)[0])

    def test_an_emergency_rotation_trusts_the_old_key_no_longer(self, driver_client, parking):
        old_command = command_of(new_session(driver_client, parking))
        now = timezone.now()

        rotate_leaked_key_pair(secured_parking_id=parking.pk, now=now)

        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        assert refused_reason(old_command, parking, mac, now=now) == "unknown_key"

    def test_an_issued_command_costs_as_many_queries_before_and_after_a_switch(
        self, driver_client, parking, settings, django_assert_num_queries
    ):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        ParkingSession.objects.filter(pk=session_id).update(entrance_remaining_tries=10)
        # token + user, session, the try, its log entry, key counter, key, key pair, access
        # points, command, its log entry, the session read back with its access points,
        # and two savepoints set and released
        with django_assert_num_queries(16):
            act(driver_client, session_id, "entrance_try")
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        with django_assert_num_queries(16):
            act(driver_client, session_id, "entrance_try")
        settings.ACCESS_COMMAND_KEY_ROTATION_DELAY = timedelta(0)
        switch_to_next_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        # The switch that came due is not written on the try: the time picks the key.
        with django_assert_num_queries(16):
            command = command_of(act(driver_client, session_id, "entrance_try"))

        waiting = ParkingKeyPair.objects.get(state=KeyPairState.NEXT)
        assert decode_access_command(command)[0].key_id.hex() == waiting.key_id


class TestAccessLog:
    def test_every_command_and_try_is_logged_with_who_what_and_result(self, driver_client, parking):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        act(driver_client, session_id, "entrance_try")
        ParkingSession.objects.filter(pk=session_id).update(entrance_remaining_tries=0)
        assert session_action(driver_client, session_id, "entrance_try").status_code == 409

        log = list(
            AccessLogEntry.objects.filter(parking_session_id=session_id)
            .order_by("id")
            .values_list("event", "result", "direction")
        )

        assert log == [
            (AccessEvent.COMMAND_ISSUED, AccessResult.ISSUED, Direction.ENTRANCE),
            (AccessEvent.ENTRANCE_TRY, AccessResult.GRANTED, Direction.ENTRANCE),
            (AccessEvent.COMMAND_ISSUED, AccessResult.ISSUED, Direction.ENTRANCE),
            (AccessEvent.ENTRANCE_TRY, AccessResult.REFUSED, Direction.ENTRANCE),
        ]
        entry = AccessLogEntry.objects.filter(parking_session_id=session_id).latest("id")
        assert entry.driver == driver_client.driver
        assert entry.secured_parking == parking
        assert "No entrance tries left" in entry.detail

    def test_an_exit_try_in_the_wrong_state_is_logged_as_refused(self, driver_client, parking):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]

        assert session_action(driver_client, session_id, "exit_try").status_code == 409

        entry = AccessLogEntry.objects.get(event=AccessEvent.EXIT_TRY)
        assert (entry.result, entry.direction) == (AccessResult.REFUSED, Direction.EXIT)


class TestManagementCommands:
    def test_export_barrier_keys_prints_public_keys_and_tags_for_provisioning(self, parking):
        other = SecuredParkingFactory()
        current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        out = call_command_output("export_barrier_keys")

        document = json.loads(out)
        by_id = {item["secured_parking_id"]: item for item in document["parkings"]}
        exported = by_id[parking.pk]
        current = ParkingKeyPair.objects.current().get(secured_parking=parking)
        assert exported["current_key"]["public_key"] == current.public_key
        assert exported["current_key"]["accepted_until"] is None
        assert exported["next_key"] is exported["previous_key"] is None
        assert {ap["mac_address"] for ap in exported["access_points"]} == set(
            parking.access_points.values_list("mac_address", flat=True)
        )
        assert all(len(ap["tag"]) == 8 for ap in exported["access_points"])
        # A parking without a key gets one, so its barriers can be provisioned up front.
        assert by_id[other.pk]["current_key"]["key_id"]
        assert by_id[other.pk]["previous_key"] is None
        assert "private" not in out and "encrypted" not in out

    def test_export_barrier_keys_publishes_the_next_key_before_it_signs(self, parking, settings):
        now = timezone.now()
        current = current_key_pair(secured_parking_id=parking.pk, now=now)
        waiting = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        exported = json.loads(call_command_output("export_barrier_keys"))["parkings"][0]

        switch = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY
        assert exported["current_key"]["key_id"] == current.key_id
        assert exported["current_key"]["accepted_until"] == iso_seconds(
            switch + settings.ACCESS_COMMAND_KEY_OVERLAP
        )
        assert exported["next_key"]["key_id"] == waiting.key_id
        assert exported["next_key"]["public_key"] == waiting.public_key
        assert exported["next_key"]["signs_from"] == iso_seconds(switch)
        assert exported["previous_key"] is None

    def test_export_barrier_keys_lists_current_next_and_previous_keys(self, parking):
        now = timezone.now() - timedelta(seconds=1)
        first = current_key_pair(secured_parking_id=parking.pk, now=now)
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        second = switch_to_next_key_pair(secured_parking_id=parking.pk, now=now)
        third = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        exported = json.loads(call_command_output("export_barrier_keys"))["parkings"][0]

        keys = {
            role: exported[role]["key_id"] for role in ["current_key", "next_key", "previous_key"]
        }
        assert keys == {
            "current_key": second.key_id,
            "next_key": third.key_id,
            "previous_key": first.key_id,
        }
        first.refresh_from_db()
        assert exported["previous_key"]["accepted_until"] == iso_seconds(first.accepted_until)

    def test_export_barrier_keys_for_one_parking_keys_and_prints_that_one_only(self, parking):
        other = SecuredParkingFactory()

        out = call_command_output("export_barrier_keys", "--parking", str(parking.pk))

        exported = json.loads(out)["parkings"]
        assert [item["secured_parking_id"] for item in exported] == [parking.pk]
        current = ParkingKeyPair.objects.current().get(secured_parking=parking)
        assert exported[0]["current_key"]["key_id"] == current.key_id
        assert not ParkingKeyPair.objects.filter(secured_parking=other).exists()

    def test_verify_access_command_accepts_a_genuine_command(self, driver_client, parking):
        command = command_of(new_session(driver_client, parking))
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]

        out = call_command_output(
            "verify_access_command", command, "--mac", mac, "--direction", "entrance"
        )

        assert "VALID" in out
        assert '"counter": 1' in out

    def test_verify_access_command_with_an_explicit_key_and_time(self, driver_client, parking):
        command = command_of(new_session(driver_client, parking))
        key = ParkingKeyPair.objects.get(secured_parking=parking).public_key
        mac = barrier_macs(parking, Direction.ENTRANCE)[0]
        late = (timezone.now() + timedelta(hours=1)).isoformat()

        with pytest.raises(CommandError, match=r"REFUSED \(expired\)"):
            call_command_output(
                "verify_access_command", command, "--mac", mac, "--public-key", key, "--now", late
            )
        with pytest.raises(CommandError, match=r"REFUSED \(replayed\)"):
            call_command_output(
                "verify_access_command", command, "--mac", mac, "--last-counter", "1"
            )


def call_command_output(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_demo_session_carries_a_genuine_command(db, localstripe):
    demo = seed_demo(now=timezone.now())

    key = demo.session.smart_key
    mac = demo.access_points[0].mac_address
    assert verify(key.access_command, demo.parking, mac, direction="entrance")
    assert demo.session.state == State.ACTIVE
