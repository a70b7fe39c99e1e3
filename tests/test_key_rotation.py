"""Rotating a parking's signing key pair: a routine rotation publishes a next key that signs
only after the delay or an operator's switch, so barriers can be provisioned with it first;
the key it replaces verifies for the overlap after the switch; the emergency rotation trusts
no old key at all. The invariants hold in the database and under concurrent switches.
Commands as barriers verify them on the journey are in test_access_commands_issued.py, the
admin actions in the test_admin_* files."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import DomainError
from smart_keys.exceptions import KeyRotationPending, NoNextKeyPair
from smart_keys.models import KeyPairState, ParkingKeyPair
from smart_keys.selectors import trusted_barrier_keys
from smart_keys.services import (
    current_key_pair,
    rotate_leaked_key_pair,
    rotate_parking_key_pair,
    switch_to_next_key_pair,
)
from tests.database import refused_by_the_database
from tests.factories import SecuredParkingFactory

SECOND = timedelta(seconds=1)


def signing(parking, at) -> str:
    return current_key_pair(secured_parking_id=parking.pk, now=at).key_id


def trusted(parking, at) -> set[str]:
    keys = trusted_barrier_keys(now=at, secured_parking_id=parking.pk)
    return {key.key_id.hex() for key in keys}


@pytest.fixture
def parking(db):
    return SecuredParkingFactory(access_points=2)


@pytest.fixture
def old(parking):
    return current_key_pair(secured_parking_id=parking.pk, now=timezone.now() - SECOND)


@pytest.mark.django_db
class TestRoutineRotation:
    def test_the_next_key_signs_only_once_the_delay_is_up(self, parking, old, settings):
        now = timezone.now()
        switch = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY

        new = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        assert new.state == KeyPairState.NEXT and new.signs_from == switch
        assert signing(parking, now) == signing(parking, switch - SECOND) == old.key_id
        assert signing(parking, switch) == signing(parking, switch + SECOND) == new.key_id

    def test_the_delay_is_a_setting(self, parking, old, settings):
        settings.ACCESS_COMMAND_KEY_ROTATION_DELAY = timedelta(hours=1)
        now = timezone.now()

        new = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        assert new.signs_from == now + timedelta(hours=1)

    def test_barriers_trust_the_next_key_from_the_rotation_and_the_old_one_past_the_switch(
        self, parking, old, settings
    ):
        now = timezone.now()
        switch = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY
        overlap_end = switch + settings.ACCESS_COMMAND_KEY_OVERLAP

        new = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        assert trusted(parking, now) == {old.key_id, new.key_id}
        assert trusted(parking, overlap_end - SECOND) == {old.key_id, new.key_id}
        assert trusted(parking, overlap_end) == {new.key_id}

    def test_picking_the_signing_key_costs_one_query_before_and_after_the_switch(
        self, parking, old, settings, django_assert_num_queries
    ):
        now = timezone.now()
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        switch = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY

        with django_assert_num_queries(1):
            before = current_key_pair(secured_parking_id=parking.pk, now=now)
        with django_assert_num_queries(1):
            after = current_key_pair(secured_parking_id=parking.pk, now=switch)

        assert before.key_id == old.key_id != after.key_id

    def test_a_second_rotation_waits_for_the_switch(self, parking, old, settings):
        now = timezone.now()
        first = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        with pytest.raises(KeyRotationPending):
            rotate_parking_key_pair(secured_parking_id=parking.pk, now=now + SECOND)

        later = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY
        second = rotate_parking_key_pair(secured_parking_id=parking.pk, now=later)
        states = dict(ParkingKeyPair.objects.values_list("key_id", "state"))
        assert states == {
            old.key_id: KeyPairState.RETIRED,
            first.key_id: KeyPairState.CURRENT,
            second.key_id: KeyPairState.NEXT,
        }
        assert signing(parking, later) == first.key_id

    def test_a_parking_without_a_key_pair_gets_one_signing_at_once(self, parking):
        now = timezone.now()

        first = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        assert first.state == KeyPairState.CURRENT
        assert signing(parking, now) == first.key_id


@pytest.mark.django_db
class TestSwitchingNow:
    def test_the_next_key_signs_from_the_switch_and_the_old_one_verifies_for_the_overlap(
        self, parking, old, settings
    ):
        now = timezone.now()
        new = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        switched = now + timedelta(hours=2)

        returned = switch_to_next_key_pair(secured_parking_id=parking.pk, now=switched)

        assert returned.key_id == new.key_id == signing(parking, switched)
        old.refresh_from_db()
        assert old.state == KeyPairState.RETIRED
        assert old.accepted_until == switched + settings.ACCESS_COMMAND_KEY_OVERLAP
        assert trusted(parking, old.accepted_until - SECOND) == {old.key_id, new.key_id}
        assert trusted(parking, old.accepted_until) == {new.key_id}

    def test_switching_without_a_next_key_is_refused(self, parking, old):
        with pytest.raises(NoNextKeyPair):
            switch_to_next_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        assert signing(parking, timezone.now()) == old.key_id

    def test_barriers_keep_one_previous_key_only(self, parking, old):
        now = timezone.now()
        second = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        switch_to_next_key_pair(secured_parking_id=parking.pk, now=now)
        third = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now + SECOND)
        switch_to_next_key_pair(secured_parking_id=parking.pk, now=now + SECOND)

        assert trusted(parking, now + 2 * SECOND) == {second.key_id, third.key_id}


@pytest.mark.django_db
class TestEmergencyRotation:
    def test_a_new_key_signs_at_once_and_no_other_is_trusted(self, parking, old):
        now = timezone.now()
        waiting = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        new = rotate_leaked_key_pair(secured_parking_id=parking.pk, now=now + SECOND)

        assert signing(parking, now + SECOND) == new.key_id
        assert trusted(parking, now + SECOND) == {new.key_id}
        states = dict(ParkingKeyPair.objects.values_list("key_id", "state"))
        assert states[old.key_id] == states[waiting.key_id] == KeyPairState.RETIRED

    def test_it_ends_the_previous_keys_overlap_too(self, parking, old):
        now = timezone.now()
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        switch_to_next_key_pair(secured_parking_id=parking.pk, now=now)
        assert old.key_id in trusted(parking, now + SECOND)

        new = rotate_leaked_key_pair(secured_parking_id=parking.pk, now=now + SECOND)

        assert trusted(parking, now + SECOND) == {new.key_id}


@pytest.mark.django_db
def test_the_signing_query_and_the_rows_own_answer_agree_through_rotations(parking, old):
    now = timezone.now()
    rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
    switch_to_next_key_pair(secured_parking_id=parking.pk, now=now + SECOND)
    rotate_parking_key_pair(secured_parking_id=parking.pk, now=now + 2 * SECOND)
    instants = [now + offset * SECOND for offset in (-1, 0, 1, 2, 3)] + [now + timedelta(days=30)]

    for at in instants:
        by_query = set(ParkingKeyPair.objects.signing(at).values_list("key_id", flat=True))
        by_row = {kp.key_id for kp in ParkingKeyPair.objects.all() if kp.signs_at(at)}
        assert by_query == by_row and len(by_query) == 1, at


@pytest.mark.django_db
@pytest.mark.parametrize("state", [KeyPairState.CURRENT, KeyPairState.NEXT])
def test_a_parking_has_at_most_one_current_and_one_next_key_pair(parking, old, state):
    now = timezone.now()
    rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

    def another() -> None:
        ParkingKeyPair.objects.create(
            secured_parking=parking,
            key_id="00000000",
            public_key="00" * 32,
            encrypted_private_key="x",
            state=state,
            created_at=now,
            signs_from=now,
        )

    assert refused_by_the_database(another)


def fire_together(calls: list[Callable[[], object]]) -> list:
    """Each call from its own thread, all released at once, each on its own connection;
    returns what each returned or the domain error it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        try:
            barrier.wait(timeout=30)
            return call()
        except DomainError as refusal:
            return refusal
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrentRotations:
    def test_switches_at_once_leave_one_current_key_pair(self):
        parking = SecuredParkingFactory()
        now = timezone.now()
        current_key_pair(secured_parking_id=parking.pk, now=now)
        new = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)

        switch = partial(switch_to_next_key_pair, secured_parking_id=parking.pk, now=now)

        results = fire_together([switch] * 8)

        switched = [r for r in results if isinstance(r, ParkingKeyPair)]
        assert [key_pair.key_id for key_pair in switched] == [new.key_id]
        assert sum(isinstance(r, NoNextKeyPair) for r in results) == 7
        assert ParkingKeyPair.objects.current().get(secured_parking=parking).key_id == new.key_id
        assert ParkingKeyPair.objects.signing(now).filter(secured_parking=parking).count() == 1

    def test_rotations_at_once_publish_one_next_key_pair(self):
        parking = SecuredParkingFactory()
        now = timezone.now()
        current_key_pair(secured_parking_id=parking.pk, now=now)

        rotate = partial(rotate_parking_key_pair, secured_parking_id=parking.pk, now=now)

        results = fire_together([rotate] * 8)

        assert sum(isinstance(r, ParkingKeyPair) for r in results) == 1
        assert sum(isinstance(r, KeyRotationPending) for r in results) == 7
        assert ParkingKeyPair.objects.filter(state=KeyPairState.NEXT).count() == 1

    def test_an_emergency_rotation_racing_a_switch_leaves_one_current_key_pair(self):
        parking = SecuredParkingFactory()
        now = timezone.now()
        current_key_pair(secured_parking_id=parking.pk, now=now)
        rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        leaked = partial(rotate_leaked_key_pair, secured_parking_id=parking.pk, now=now)
        switch = partial(switch_to_next_key_pair, secured_parking_id=parking.pk, now=now)

        results = fire_together([leaked, switch] * 4)

        refusals = [r for r in results if not isinstance(r, ParkingKeyPair)]
        assert all(isinstance(refusal, NoNextKeyPair) for refusal in refusals)
        assert ParkingKeyPair.objects.current().filter(secured_parking=parking).count() == 1
        assert ParkingKeyPair.objects.signing(now).filter(secured_parking=parking).count() == 1
