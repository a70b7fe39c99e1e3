"""Evidence drives sessions: the barriers' records, relayed through ``POST passages``, move
sessions on through the session services, charge stays the app did not report, and flag
what should not happen. Reference barriers (smart_keys.reference_barrier) stand at the
parking; everything else goes through the HTTP API."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from parking.models import Anomaly, AnomalyKind, ParkingOccupancy, ParkingSession, State
from parking.services.back_office import cancel_by_operator
from parking.services.occupancy import recount_occupancy
from payments.models import PaymentState
from smart_keys.access_commands import (
    AccessCommand,
    AccessCommandRefused,
    access_point_tag,
    sign_access_command,
)
from smart_keys.models import AccessEvent, AccessLogEntry, AccessResult, Direction
from smart_keys.services import current_key_pair
from tests.api import CURRENT_URL, SESSIONS_URL, act, json_body, session_url
from tests.back_office import changelist_url, listed, staff_client
from tests.barriers import Clock, install_barrier, long_lived, relay, statuses, upload
from tests.factories import OperatorFactory, SecuredParkingFactory, SuperuserFactory
from tests.payments import PAYMENT_METHODS_URL, save_card, wait_for_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=2, operator=OperatorFactory())


@pytest.fixture
def gates(parking):
    """The parking's barriers, each a reference barrier: two entrances and an exit."""
    points = {
        "north": parking.access_points.filter(direction=Direction.ENTRANCE).order_by("id")[0],
        "south": parking.access_points.filter(direction=Direction.ENTRANCE).order_by("id")[1],
        "exit": parking.access_points.get(direction=Direction.EXIT),
    }
    barriers = {name: install_barrier(point) for name, point in points.items()}
    return points, barriers


@pytest.fixture
def driver(driver_client):
    return long_lived(driver_client)


@pytest.fixture
def passer_by(make_driver_client):
    """Another driver, whose phone happens to connect to the barriers and relay."""
    return long_lived(make_driver_client())


def start(client, parking, access_point) -> dict:
    return json_body(
        client.post(
            SESSIONS_URL,
            {"secured_parking_id": parking.pk, "access_point_id": access_point.pk},
            format="json",
        ),
        201,
    )


def head_out(client, session_id: int, access_point) -> dict:
    return json_body(
        client.post(
            session_url(session_id, "exit"), {"access_point_id": access_point.pk}, format="json"
        ),
        200,
    )


def command_of(body: dict) -> str:
    return body["smart_key"]["access_command"]


def session(session_id: int) -> ParkingSession:
    return ParkingSession.objects.get(pk=session_id)


def anomalies() -> list[tuple[str, int | None, bool]]:
    return [
        (a.kind, a.parking_session_id, a.resolved_at is not None)
        for a in Anomaly.objects.order_by("id")
    ]


class TestAJourneyTheAppNeverReports:
    def test_the_barriers_records_enter_and_finish_the_session(
        self, driver, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        barriers["north"].present(command_of(body), clock.now())

        relay(passer_by, barriers["north"])
        assert session(session_id).state == State.ACTIVE

        clock.advance(hours=2, minutes=10)
        exiting = head_out(driver, session_id, points["exit"])
        assert exiting["amount"] == "15.00"
        left_at = clock.advance(minutes=4)
        barriers["exit"].present(command_of(exiting), left_at)
        relay(passer_by, barriers["exit"])

        finished = session(session_id)
        assert (finished.state, finished.amount) == (State.FINISHED, Decimal("15.00"))
        assert finished.end_time == left_at.replace(microsecond=0)
        assert driver.get(CURRENT_URL).status_code == 404
        assert anomalies() == []
        events = AccessLogEntry.objects.filter(parking_session_id=session_id)
        assert events.filter(event=AccessEvent.PASSAGE).count() == 2

    def test_the_apps_own_calls_after_the_evidence_answer_409_and_change_nothing(
        self, driver, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        barriers["north"].present(command_of(body), clock.now())
        relay(passer_by, barriers["north"])

        assert driver.post(session_url(session_id, "enter")).status_code == 409
        assert session(session_id).state == State.ACTIVE


class TestTheFreeStayAttack:
    """Open the entrance with the first command, never call `enter`: the session times
    out with the car inside. Hours later start another, `enter` and `exit` within the
    free 15 minutes, and leave with its exit command."""

    def attack(self, driver, parking, gates, clock) -> tuple[int, int]:
        points, barriers = gates
        first = start(driver, parking, points["north"])
        barriers["north"].present(command_of(first), clock.now())
        clock.advance(minutes=16)  # timed out
        assert driver.get(CURRENT_URL).status_code == 404
        clock.advance(hours=3)
        second = start(driver, parking, points["south"])
        second_id = second["parking_session"]["id"]
        act(driver, second_id, "enter")
        clock.advance(minutes=5)
        exiting = head_out(driver, second_id, points["exit"])
        assert exiting["amount"] == "0.00"
        barriers["exit"].present(command_of(exiting), clock.advance(minutes=1))
        act(driver, second_id, "finalize")
        return first["parking_session"]["id"], second_id

    @pytest.mark.parametrize("order", [("north", "exit"), ("exit", "north")])
    def test_the_stay_is_charged_from_the_first_passage_and_flagged(
        self, driver, passer_by, parking, gates, clock, order
    ):
        points, barriers = gates
        first_id, second_id = self.attack(driver, parking, gates, clock)

        for name in order:
            relay(passer_by, barriers[name])

        stay = session(first_id)
        assert stay.state == State.FINISHED
        # 3 h 22 min in, 4 started hours at 5.00
        assert stay.amount == Decimal("20.00")
        # Barrier times are whole seconds.
        assert abs(stay.end_time - stay.start_time - timedelta(hours=3, minutes=22)) < (
            timedelta(seconds=1)
        )
        assert session(second_id).amount == Decimal("0.00")
        assert sorted(anomalies()) == [
            (AnomalyKind.CLOSED_SESSION_PASSAGE, first_id, False),
            (AnomalyKind.EXIT_WITHOUT_ENTRANCE, second_id, True),
        ]
        assert recount_occupancy() == []  # the counter followed the reopened stay
        flagged = AccessLogEntry.objects.filter(event=AccessEvent.ANOMALY)
        assert set(flagged.values_list("result", flat=True)) == {AccessResult.FLAGGED}
        assert flagged.count() == 2

    def test_relayed_before_the_next_start_the_stay_is_reopened_and_blocks_it(
        self, driver, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        first = start(driver, parking, points["north"])
        barriers["north"].present(command_of(first), clock.now())
        clock.advance(minutes=16)

        relay(passer_by, barriers["north"])

        current = json_body(driver.get(CURRENT_URL), 200)
        assert current["parking_session"]["id"] == first["parking_session"]["id"]
        assert current["parking_session"]["state"] == "active"
        clock.advance(hours=1)
        assert json_body(driver.get(CURRENT_URL), 200)["amount"] == "10.00"
        refused = driver.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json")
        assert refused.status_code == 409
        assert ParkingOccupancy.objects.get(secured_parking=parking).parked == 1
        assert recount_occupancy() == []

    def test_a_session_an_operator_cancelled_is_flagged_not_reopened(
        self, driver, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        barriers["north"].present(command_of(body), clock.now())
        cancel_by_operator(
            session=session(session_id),
            actor=SuperuserFactory(),
            reason="Ticket 12: barrier jammed",
            now=clock.now(),
        )

        relay(passer_by, barriers["north"])

        assert session(session_id).state == State.CANCELLED
        assert anomalies() == [(AnomalyKind.CLOSED_SESSION_PASSAGE, session_id, False)]


class TestSharedCommands:
    def test_a_command_for_one_barrier_is_refused_by_the_other(self, driver, parking, gates, clock):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        barriers["north"].present(command_of(body), clock.now())

        with pytest.raises(AccessCommandRefused) as refusal:
            barriers["south"].present(command_of(body), clock.now())
        assert refusal.value.reason == "wrong_access_point"

    def test_a_command_for_both_entrances_opening_both_is_flagged(
        self, driver, passer_by, parking, gates, clock
    ):
        _points, barriers = gates
        body = json_body(
            driver.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json"), 201
        )
        session_id = body["parking_session"]["id"]
        barriers["north"].present(command_of(body), clock.now())
        barriers["south"].present(command_of(body), clock.advance(seconds=40))

        relay(passer_by, barriers["north"], barriers["south"])

        assert anomalies() == [(AnomalyKind.SHARED_COMMAND, session_id, False)]
        assert session(session_id).state == State.ACTIVE


class TestPassagesThatShouldNotHappen:
    def test_a_passage_naming_no_session_is_flagged_for_the_parking(
        self, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        key_pair = current_key_pair(secured_parking_id=parking.pk, now=clock.now())
        forged = AccessCommand(
            direction="entrance",
            key_id=bytes.fromhex(key_pair.key_id),
            smart_key_id=999_999,
            parking_session_id=888_888,
            counter=1,
            not_before=int(clock.now().timestamp()),
            lifetime=120,
            access_point_tags=(access_point_tag(points["north"].mac_address),),
        )
        # What a leaked parking key would let someone do.
        barriers["north"].present(sign_access_command(forged, key_pair.private_key()), clock.now())

        assert statuses(relay(passer_by, barriers["north"])) == [("accepted", None)]

        assert anomalies() == [(AnomalyKind.NO_SESSION, None, False)]
        entry = AccessLogEntry.objects.get(event=AccessEvent.ANOMALY)
        assert (entry.parking_session_id, entry.secured_parking_id) == (None, parking.pk)
        assert "888888" in entry.detail

    def test_an_exit_without_an_entrance_is_flagged_and_resolved_when_the_entrance_comes(
        self, driver, passer_by, parking, gates, clock
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        barriers["north"].present(command_of(body), clock.now())
        act(driver, session_id, "enter")
        clock.advance(minutes=30)
        exiting = head_out(driver, session_id, points["exit"])
        barriers["exit"].present(command_of(exiting), clock.advance(minutes=2))

        relay(passer_by, barriers["exit"])
        assert anomalies() == [(AnomalyKind.EXIT_WITHOUT_ENTRANCE, session_id, False)]
        assert session(session_id).state == State.FINISHED

        relay(passer_by, barriers["north"])
        assert anomalies() == [(AnomalyKind.EXIT_WITHOUT_ENTRANCE, session_id, True)]
        assert session(session_id).amount == Decimal("5.00")

    def test_a_duplicate_flags_nothing_twice(self, driver, passer_by, parking, gates, clock):
        _points, barriers = gates
        body = json_body(
            driver.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json"), 201
        )
        barriers["north"].present(command_of(body), clock.now())
        barriers["south"].present(command_of(body), clock.now())
        records = barriers["north"].hand_over() + barriers["south"].hand_over()
        upload(passer_by, records)

        again = upload(passer_by, records)

        assert statuses(again) == [("duplicate", None), ("duplicate", None)]
        assert Anomaly.objects.count() == 1


class TestTheAnomaliesList:
    def test_staff_see_their_parkings_anomalies_only(
        self, driver, passer_by, parking, gates, clock
    ):
        _points, barriers = gates
        body = json_body(
            driver.post(SESSIONS_URL, {"secured_parking_id": parking.pk}, format="json"), 201
        )
        barriers["north"].present(command_of(body), clock.now())
        barriers["south"].present(command_of(body), clock.now())
        relay(passer_by, barriers["north"], barriers["south"])

        own = staff_client(parking.operator).get(changelist_url(Anomaly) + "?resolved=no")
        other = staff_client(OperatorFactory()).get(changelist_url(Anomaly))

        assert [a.kind for a in listed(own)] == [AnomalyKind.SHARED_COMMAND]
        assert "One command, two openings" in own.content.decode()
        assert listed(other) == []


class TestTheOfflineExit:
    def test_the_exit_command_opens_for_the_walk_to_the_car_and_the_record_finishes_it(
        self, driver, passer_by, parking, gates, clock, settings
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        act(driver, session_id, "enter")
        clock.advance(hours=1, minutes=30)
        exiting = head_out(driver, session_id, points["exit"])
        assert exiting["amount"] == "10.00"
        assert settings.OFFLINE_EXIT_COMMAND_VALIDITY == timedelta(minutes=20)

        # Underground, no network: nineteen minutes later the barrier opens all the same.
        left_at = clock.advance(minutes=19)
        barriers["exit"].present(command_of(exiting), left_at)
        key_end = session(session_id).smart_key.end_time
        assert key_end >= left_at

        clock.advance(hours=5)  # the next phone at the exit relays the record
        relay(passer_by, barriers["exit"])
        finished = session(session_id)
        assert (finished.state, finished.amount) == (State.FINISHED, Decimal("10.00"))
        assert finished.end_time == left_at.replace(microsecond=0)

    def test_past_its_validity_the_exit_command_is_refused_and_a_try_gets_a_short_one(
        self, driver, parking, gates, clock
    ):
        points, barriers = gates
        body = start(driver, parking, points["north"])
        session_id = body["parking_session"]["id"]
        act(driver, session_id, "enter")
        exiting = head_out(driver, session_id, points["exit"])

        clock.advance(minutes=20, seconds=barriers["exit"].leeway_seconds)
        with pytest.raises(AccessCommandRefused) as refusal:
            barriers["exit"].present(command_of(exiting), clock.now())
        assert refusal.value.reason == "expired"

        tried = json_body(
            driver.post(
                session_url(session_id, "exit_try"),
                {"access_point_id": points["exit"].pk},
                format="json",
            ),
            200,
        )
        clock.advance(seconds=120 + barriers["exit"].leeway_seconds)
        with pytest.raises(AccessCommandRefused) as refusal:
            barriers["exit"].present(command_of(tried), clock.now())
        assert refusal.value.reason == "expired"


@pytest.mark.postgres  # the job worker's queue is PostgreSQL's
class TestChargesFollowTheEvidence:
    """With card payments: a stay reopened after its hold was released is charged through
    the capture path, off-session; a refused card leaves it owed."""

    @pytest.mark.parametrize("card_removed", [False, True])
    def test_a_reopened_stay_whose_hold_was_released_is_charged_or_owed(
        self, make_driver_client, localstripe, job_worker, clock, card_removed
    ):
        parking = SecuredParkingFactory(access_points=1, charges_by_card=True)
        entrance = parking.access_points.get(direction=Direction.ENTRANCE)
        exit_point = parking.access_points.get(direction=Direction.EXIT)
        north, out = install_barrier(entrance), install_barrier(exit_point)
        driver, passer_by = long_lived(make_driver_client()), long_lived(make_driver_client())
        card = save_card(driver, localstripe)
        job_worker(env={"STRIPE_API_BASE": localstripe.url})
        body = start(driver, parking, entrance)
        session_id = body["parking_session"]["id"]
        north.present(command_of(body), clock.now())
        clock.advance(minutes=16)
        call_command("cleanup_parking", stdout=StringIO())  # timed out: its hold released
        payment_id = session(session_id).payment_id
        wait_for_state(payment_id, PaymentState.RELEASED)
        if card_removed:
            assert driver.delete(f"{PAYMENT_METHODS_URL}/{card['id']}").status_code == 204

        relay(passer_by, north)
        clock.advance(hours=1)
        exiting = head_out(driver, session_id, exit_point)
        out.present(command_of(exiting), clock.advance(minutes=3))
        relay(passer_by, out)

        assert exiting["amount"] == "10.00"
        expected = PaymentState.OUTSTANDING if card_removed else PaymentState.CAPTURED
        payment = wait_for_state(payment_id, expected)
        assert payment.amount == Decimal("10.00")
        assert payment.captured_amount == (Decimal("0.00") if card_removed else Decimal("10.00"))
        assert session(session_id).state == State.FINISHED
