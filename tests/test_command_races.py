"""Racing tries on real PostgreSQL: every issued command gets its own, increasing counter,
and a parking's first commands, issued at once, share one key pair."""

from functools import partial

import pytest

from parking.models import State
from smart_keys.access_commands import decode_access_command
from smart_keys.models import AccessEvent, AccessLogEntry, ParkingKeyPair, SmartKey
from tests.api import session_action
from tests.factories import ParkingSessionFactory, SecuredParkingFactory
from tests.test_races import clients_of_one_driver, fire_together, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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
