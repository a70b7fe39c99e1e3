"""Racing requests on real PostgreSQL: the API never double-books, double-spends or fails with
500, every access command issued at once gets its own increasing counter, and a parking's first
commands, issued at once, share one key pair.

Each test fires its requests from real threads, released together by a barrier, each with its
own client and its own database connection. The tests commit (``transaction=True``) so the
threads see the rows the test made, and each other's."""

from functools import partial

import pytest

from parking.models import IdempotencyRecord, ParkingSession, State
from smart_keys.access_commands import decode_access_command
from smart_keys.models import AccessEvent, AccessLogEntry, ParkingKeyPair, SmartKey
from tests.api import session_action, start_session
from tests.factories import DriverFactory, ParkingSessionFactory, SecuredParkingFactory
from tests.threads import (
    clients_of_new_drivers,
    clients_of_one_driver,
    codes,
    fire_together,
    statuses,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_driver_starting_32_times_at_one_parking_gets_one_session_and_one_key():
    driver = DriverFactory()
    parking = SecuredParkingFactory(access_points=1)
    clients = clients_of_one_driver(driver, 32)

    answers = fire_together([partial(start_session, client, parking) for client in clients])

    assert statuses(answers) == {201: 1, 409: 31}
    session = ParkingSession.objects.get(driver=driver)
    assert codes(answers, 409) == {"open_session_exists"}
    assert {a.body["parking_session_id"] for a in answers if a.status == 409} == {session.pk}
    assert SmartKey.objects.filter(driver=driver).count() == 1


def test_one_driver_starting_at_32_parkings_at_once_gets_one_session_and_one_key():
    driver = DriverFactory()
    parkings = SecuredParkingFactory.create_batch(32)
    clients = clients_of_one_driver(driver, 32)

    answers = fire_together(
        [
            partial(start_session, client, parking)
            for client, parking in zip(clients, parkings, strict=True)
        ]
    )

    assert statuses(answers) == {201: 1, 409: 31}
    assert codes(answers, 409) == {"open_session_exists"}
    assert ParkingSession.objects.filter(driver=driver).count() == 1
    assert SmartKey.objects.filter(driver=driver).count() == 1


def test_50_drivers_starting_at_once_at_one_parking_all_get_in():
    parking = SecuredParkingFactory(capacity=50)
    clients = clients_of_new_drivers(50)

    answers = fire_together([partial(start_session, client, parking) for client in clients])

    assert statuses(answers) == {201: 50}
    sessions = ParkingSession.objects.filter(secured_parking=parking)
    assert sessions.count() == 50
    assert sessions.values("driver").distinct().count() == 50


def test_20_drivers_racing_for_5_places_leave_15_turned_away():
    parking = SecuredParkingFactory(capacity=5)
    clients = clients_of_new_drivers(20)

    answers = fire_together([partial(start_session, client, parking) for client in clients])

    assert statuses(answers) == {201: 5, 409: 15}
    assert codes(answers, 409) == {"parking_unavailable"}
    assert ParkingSession.objects.filter(secured_parking=parking).count() == 5
    assert SmartKey.objects.filter(secured_parking=parking).count() == 5


@pytest.mark.parametrize(
    ("state", "action", "tries_field"),
    [
        (State.ENTERING, "entrance_try", "entrance_remaining_tries"),
        (State.EXITING, "exit_try", "exit_remaining_tries"),
    ],
)
def test_20_taps_at_once_spend_exactly_the_3_tries_left(state, action, tries_field):
    session = ParkingSessionFactory(
        state=state, secured_parking__entrance_tries=3, secured_parking__exit_tries=3
    )
    clients = clients_of_one_driver(session.driver, 20)

    answers = fire_together(
        [partial(session_action, client, session.pk, action) for client in clients]
    )

    assert statuses(answers) == {200: 3, 409: 17}
    assert codes(answers, 409) == {"no_tries_left"}
    session.refresh_from_db()
    assert getattr(session, tries_field) == 0
    assert session.state == state


def test_10_finalizes_at_once_close_the_session_once():
    session = ParkingSessionFactory(state=State.EXITING)
    clients = clients_of_one_driver(session.driver, 10)

    answers = fire_together(
        [partial(session_action, client, session.pk, "finalize") for client in clients]
    )

    assert statuses(answers) == {200: 1, 409: 9}
    assert codes(answers, 409) == {"invalid_session_state"}
    session.refresh_from_db()
    assert session.state == State.FINISHED


def test_10_retries_with_one_idempotency_key_all_answer_the_one_session_they_made():
    driver = DriverFactory()
    parking = SecuredParkingFactory()
    clients = clients_of_one_driver(driver, 10)
    key = "3f1c2a9e-0d4b-4f7a-9c61-2b8e5d7a1f00"

    answers = fire_together(
        [partial(start_session, client, parking, idempotency_key=key) for client in clients]
    )

    assert statuses(answers) == {201: 10}
    session = ParkingSession.objects.get(driver=driver)
    assert {answer.body["parking_session"]["id"] for answer in answers} == {session.pk}
    replayed = [answer for answer in answers if answer.headers.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 9
    assert SmartKey.objects.filter(driver=driver).count() == 1
    assert IdempotencyRecord.objects.filter(driver=driver, key=key).count() == 1


def test_20_tries_at_once_issue_20_commands_with_distinct_counters():
    session = ParkingSessionFactory(state=State.ENTERING, entrance_remaining_tries=20)
    clients = clients_of_one_driver(session.driver, 20)

    answers = fire_together(
        [partial(session_action, client, session.pk, "entrance_try") for client in clients]
    )

    assert statuses(answers) == {200: 20}
    counters = [
        decode_access_command(answer.body["smart_key"]["access_command"])[0].counter
        for answer in answers
    ]
    assert sorted(counters) == list(range(1, 21))
    assert SmartKey.objects.get(pk=session.smart_key_id).command_counter == 20
    assert AccessLogEntry.objects.filter(event=AccessEvent.COMMAND_ISSUED).count() == 20


def test_a_parkings_first_commands_issued_at_once_share_one_key_pair():
    # Tries at different sessions lock different rows: the key pair's creation itself races.
    parking = SecuredParkingFactory(access_points=1)
    sessions = [
        ParkingSessionFactory(secured_parking=parking, state=State.ENTERING) for _ in range(20)
    ]
    clients = [clients_of_one_driver(session.driver, 1)[0] for session in sessions]
    requests = [
        partial(session_action, client, session.pk, "entrance_try")
        for client, session in zip(clients, sessions, strict=True)
    ]

    answers = fire_together(requests)

    assert statuses(answers) == {200: 20}
    key_pair = ParkingKeyPair.objects.get(secured_parking=parking)
    key_ids = {
        decode_access_command(answer.body["smart_key"]["access_command"])[0].key_id.hex()
        for answer in answers
    }
    assert key_ids == {key_pair.key_id}
