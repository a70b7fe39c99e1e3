"""Barrier clocks: the backend estimates each barrier's offset from its records, shows the
drifting ones in the back office, and signs time statements the app hands to barriers
without a network (docs/passage-record.md)."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from parking.models import ParkingSession, State
from smart_keys.access_commands import AccessCommandRefused
from smart_keys.models import AccessPoint, AccessPointKey, Direction, PassageRecord
from smart_keys.passage_records import TimeStatement, sign, verify_time_statement
from smart_keys.reference_barrier import MAX_BACKWARD_STEP
from tests.api import SESSIONS_URL, act, json_body, session_url
from tests.back_office import changelist_url, listed, staff_client
from tests.barriers import Clock, install_barrier, long_lived, relay
from tests.factories import OperatorFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=1, operator=OperatorFactory())


@pytest.fixture
def entrance(parking):
    return parking.access_points.get(direction=Direction.ENTRANCE)


@pytest.fixture
def exit_point(parking):
    return parking.access_points.get(direction=Direction.EXIT)


@pytest.fixture
def driver(driver_client):
    return long_lived(driver_client)


@pytest.fixture
def passer_by(make_driver_client):
    return long_lived(make_driver_client())


def statement_url(parking) -> str:
    return f"/api/car_driver/secured_parkings/{parking.pk}/time_statement"


def start(client, parking, access_point) -> dict:
    return json_body(
        client.post(
            SESSIONS_URL,
            {"secured_parking_id": parking.pk, "access_point_id": access_point.pk},
            format="json",
        ),
        201,
    )


def offset_of(access_point) -> int | None:
    return AccessPointKey.objects.current().get(access_point=access_point).clock_offset


class TestABarrierTenMinutesOff:
    def test_behind_it_refuses_the_command_until_the_app_hands_it_a_time_statement(
        self, driver, parking, entrance, clock
    ):
        barrier = install_barrier(entrance, clock_offset=-timedelta(minutes=10))
        body = start(driver, parking, entrance)
        command = body["smart_key"]["access_command"]
        with pytest.raises(AccessCommandRefused) as refusal:
            barrier.present(command, clock.now())
        assert refusal.value.reason == "not_yet_valid"

        statement = json_body(driver.get(statement_url(parking)), 200)
        assert statement["valid_seconds"] == 120
        assert barrier.apply_time_statement(statement["time_statement"], clock.advance(seconds=5))

        assert abs(barrier.clock_offset) <= timedelta(seconds=120)
        assert barrier.present(command, clock.now())

    def test_ahead_its_exit_is_dated_right_it_shows_as_drifting_and_the_answer_corrects_it(
        self, driver, passer_by, parking, entrance, exit_point, clock
    ):
        ahead = install_barrier(exit_point, clock_offset=timedelta(minutes=10))
        session_id = start(driver, parking, entrance)["parking_session"]["id"]
        act(driver, session_id, "enter")
        clock.advance(minutes=50)
        exiting = json_body(
            driver.post(
                session_url(session_id, "exit"),
                {"access_point_id": exit_point.pk},
                format="json",
            ),
            200,
        )
        # 10 min ahead, the 20-minute exit command still opens.
        left_at = clock.advance(seconds=30)
        ahead.present(exiting["smart_key"]["access_command"], left_at)

        body = relay(passer_by, ahead)

        assert 590 <= offset_of(exit_point) <= 600
        record = PassageRecord.objects.get()
        assert record.barrier_time - left_at > timedelta(minutes=9)
        assert abs(record.passed_at - left_at) <= timedelta(seconds=11)
        assert abs(ParkingSession.objects.get(pk=session_id).end_time - left_at) <= (
            timedelta(seconds=11)
        )
        assert ParkingSession.objects.get(pk=session_id).state == State.FINISHED
        # The app hands the answer's time statement to the barrier with the acknowledgement.
        assert ahead.apply_time_statement(
            body["acknowledgements"][0]["time_statement"], clock.now()
        )
        assert timedelta(0) <= ahead.clock_offset <= timedelta(seconds=120)

    def test_the_back_office_lists_drifting_barriers(
        self, make_driver_client, passer_by, parking, entrance, exit_point, clock
    ):
        right = install_barrier(entrance)
        ahead = install_barrier(exit_point, clock_offset=timedelta(minutes=10))
        drive_out(make_driver_client(), parking, entrance, exit_point, right, ahead, clock)

        relay(passer_by, right, ahead)

        staff = staff_client(parking.operator)
        drifting = staff.get(changelist_url(AccessPoint) + "?clock=drifting")
        within = staff.get(changelist_url(AccessPoint) + "?clock=right")
        assert listed(drifting) == [exit_point]
        # Relayed a minute late, the entrance's estimate is -60 s: behind, or relayed late.
        assert listed(within) == [entrance]
        assert "drifting" in drifting.content.decode()


def drive_in(client, parking, entrance, barrier, clock) -> int:
    """A driver starts and opens ``barrier``; the session's id."""
    body = start(client, parking, entrance)
    barrier.present(body["smart_key"]["access_command"], clock.now())
    return body["parking_session"]["id"]


def drive_out(client, parking, entrance, exit_point, in_barrier, out_barrier, clock) -> int:
    """In through ``in_barrier``, out through ``out_barrier`` a minute later."""
    session_id = drive_in(client, parking, entrance, in_barrier, clock)
    act(client, session_id, "enter")
    exiting = json_body(
        client.post(
            session_url(session_id, "exit"), {"access_point_id": exit_point.pk}, format="json"
        ),
        200,
    )
    out_barrier.present(exiting["smart_key"]["access_command"], clock.advance(minutes=1))
    return session_id


class TestTheEstimate:
    def test_phones_that_relay_late_do_not_move_it(
        self, make_driver_client, passer_by, parking, entrance, clock
    ):
        barrier = install_barrier(entrance)
        drive_in(make_driver_client(), parking, entrance, barrier, clock)
        relay(passer_by, barrier)
        assert abs(offset_of(entrance)) <= 1

        drive_in(long_lived(make_driver_client()), parking, entrance, barrier, clock)
        clock.advance(minutes=40)  # relayed late, by the next phone
        relay(passer_by, barrier)

        assert abs(offset_of(entrance)) <= 1
        late = PassageRecord.objects.get(sequence=2)
        assert late.passed_at == late.barrier_time

    def test_a_clock_set_right_is_followed_once_its_old_records_leave_the_window(
        self, make_driver_client, passer_by, parking, entrance, exit_point, clock, settings
    ):
        right = install_barrier(entrance)
        ahead = install_barrier(exit_point, clock_offset=timedelta(minutes=10))
        drive_out(make_driver_client(), parking, entrance, exit_point, right, ahead, clock)
        relay(passer_by, right, ahead)
        assert offset_of(exit_point) >= 599
        ahead.clock_offset = timedelta(0)  # an engineer set it

        clock.advance(seconds=settings.BARRIER_CLOCK_WINDOW.total_seconds() + 1)
        driver = long_lived(make_driver_client())
        drive_out(driver, parking, entrance, exit_point, right, ahead, clock)
        relay(passer_by, right, ahead)

        assert abs(offset_of(exit_point)) <= 1


class TestTimeStatements:
    def test_the_statement_is_signed_with_the_parkings_key_and_says_the_time(
        self, driver, parking, entrance, clock
    ):
        barrier = install_barrier(entrance)
        body = json_body(driver.get(statement_url(parking)), 200)

        fields = verify_time_statement(
            body["time_statement"], barrier.parking_keys, now=clock.now()
        )
        assert fields.issued_at == int(clock.now().timestamp())
        assert body["issued_at"] == datetime.fromtimestamp(fields.issued_at, UTC).isoformat()

    def test_an_unknown_parking_is_404(self, driver):
        assert (
            driver.get("/api/car_driver/secured_parkings/999999/time_statement").status_code == 404
        )

    def test_a_barrier_applies_a_statement_once_and_steps_back_at_most_900_seconds(
        self, driver, parking, entrance, clock
    ):
        barrier = install_barrier(entrance, clock_offset=timedelta(hours=1))
        statement = json_body(driver.get(statement_url(parking)), 200)["time_statement"]

        assert barrier.apply_time_statement(statement, clock.now())
        assert barrier.clock_offset == timedelta(hours=1) - MAX_BACKWARD_STEP
        assert not barrier.apply_time_statement(statement, clock.now())
        assert barrier.clock_offset == timedelta(hours=1) - MAX_BACKWARD_STEP

    def test_a_statement_signed_with_another_key_is_ignored(self, entrance, clock):
        barrier = install_barrier(entrance, clock_offset=timedelta(minutes=10))
        forged = sign(
            TimeStatement(barrier.parking_keys[0].key_id, int(clock.now().timestamp()) - 3600, 120),
            Ed25519PrivateKey.generate(),
        )

        assert not barrier.apply_time_statement(forged, clock.now())
        assert barrier.clock_offset == timedelta(minutes=10)
