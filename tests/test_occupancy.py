"""The count of cars parked in each parking (``ParkingOccupancy``) moves with every state
change that parks or lets out a car, in the same transaction; drivers at the entrance take a
place until their deadline, counted by start time; a job recounts from the sessions and
repairs any drift. After a random mix of everything, concurrent starts included, the counters
equal a recount."""

import logging
import random
from datetime import timedelta
from functools import partial

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.errors import DomainError
from parking.models import (
    OPEN_STATES,
    PARKED_STATES,
    ParkingOccupancy,
    ParkingSession,
    SecuredParking,
    SessionAuditEntry,
    State,
)
from parking.services.back_office import cancel_by_operator, finalize_by_operator
from parking.services.occupancy import OccupancyDrift, count_car_out, recount_occupancy
from parking.services.sessions import cancel_stale_entering_sessions, start_parking_session
from parking.tasks import recount_occupancy_job
from tests.api import (
    SECURED_PARKINGS_URL,
    act,
    error_codes,
    json_body,
    new_session,
    session_action,
    start_session,
)
from tests.back_office import change_url, parking_form_data
from tests.database import refused_by_the_database
from tests.factories import (
    AccessTokenFactory,
    DriverFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    SuperuserFactory,
)
from tests.jobs import defer_periodic_now, statuses, wait_until
from tests.threads import bearer_client, fire_together, run_together

pytestmark = pytest.mark.django_db


def counter(parking: SecuredParking) -> int:
    """What the parking's counter holds (no row: none parked yet)."""
    return (
        ParkingOccupancy.objects.filter(pk=parking.pk).values_list("parked", flat=True).first() or 0
    )


def parked_sessions(parking: SecuredParking) -> int:
    return ParkingSession.objects.filter(secured_parking=parking, state__in=PARKED_STATES).count()


def free_places(client, parking: SecuredParking) -> int:
    listed = json_body(client.get(SECURED_PARKINGS_URL), 200)["results"]
    return next(item["free_places"] for item in listed if item["id"] == parking.pk)


def occupied(parking: SecuredParking, now) -> int:
    return SecuredParking.objects.with_occupancy(now).get(pk=parking.pk).occupied_places


def test_the_counter_moves_only_when_a_car_gets_in_or_its_session_closes(driver_client):
    parking = SecuredParkingFactory(capacity=3)
    steps = []

    def record() -> None:
        steps.append((counter(parking), free_places(driver_client, parking)))

    session_id = new_session(driver_client, parking)["parking_session"]["id"]
    record()
    act(driver_client, session_id, "entrance_try")
    act(driver_client, session_id, "enter")
    record()
    act(driver_client, session_id, "exit")
    act(driver_client, session_id, "exit_try")
    record()
    act(driver_client, session_id, "finalize")
    record()
    cancelled = new_session(driver_client, parking)["parking_session"]["id"]
    act(driver_client, cancelled, "cancel")
    record()

    # (counter, free places): a driver at the entrance holds a place without being counted.
    assert steps == [(0, 2), (1, 2), (1, 2), (0, 3), (0, 3)]


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (State.ACTIVE, finalize_by_operator),
        (State.EXITING, finalize_by_operator),
        (State.ACTIVE, cancel_by_operator),
        (State.ENTERING, cancel_by_operator),
    ],
)
def test_a_back_office_finalize_or_cancel_frees_what_the_session_held(state, action):
    session = ParkingSessionFactory(state=state)
    parking = session.secured_parking
    before = (counter(parking), occupied(parking, timezone.now()))

    action(session=session, actor=SuperuserFactory(), reason="At the desk", now=timezone.now())

    assert before == (int(state in PARKED_STATES), 1)
    assert (counter(parking), occupied(parking, timezone.now())) == (0, 0)


def test_a_stale_entering_session_frees_its_place_before_the_clean_up_writes_it(
    driver_client, make_driver_client, settings
):
    parking = SecuredParkingFactory(capacity=1)
    now = timezone.now()
    stale_start = now - settings.PARKING_ENTERING_TIMEOUT
    start_parking_session(driver=DriverFactory(), secured_parking=parking, now=stale_start)
    almost = stale_start + settings.PARKING_ENTERING_TIMEOUT - timedelta(microseconds=1)

    # Until its deadline it holds the place; at the deadline it counts as cancelled.
    assert occupied(parking, almost) == 1
    assert occupied(parking, now) == 0
    assert free_places(driver_client, parking) == 1
    new_session(driver_client, parking)  # the one place, taken
    assert error_codes(start_session(make_driver_client(), parking)) == ["parking_unavailable"]
    assert cancel_stale_entering_sessions(now=timezone.now()) == 1
    assert (counter(parking), free_places(driver_client, parking)) == (0, 0)


def test_capacity_lowered_below_the_cars_inside_refuses_starts_until_they_leave(
    superuser_client, driver_client, make_driver_client
):
    parking = SecuredParkingFactory(capacity=3)
    inside = ParkingSessionFactory.create_batch(3, secured_parking=parking, state=State.EXITING)

    # An operator closes a level: the database takes a capacity below the cars inside.
    response = superuser_client.post(
        change_url(parking), {**parking_form_data(parking), "capacity": 2}
    )

    assert response.status_code == 302, response.context["errors"]
    assert (counter(parking), free_places(driver_client, parking)) == (3, 0)
    assert error_codes(start_session(driver_client, parking)) == ["parking_unavailable"]
    for session in inside[:2]:
        act(make_driver_client(session.driver), session.pk, "finalize")
    assert (counter(parking), free_places(driver_client, parking)) == (1, 1)
    new_session(driver_client, parking)


def test_saving_a_parking_read_before_cars_came_in_keeps_their_count():
    parking = SecuredParkingFactory()
    read_before = SecuredParking.objects.get(pk=parking.pk)
    ParkingSessionFactory.create_batch(2, secured_parking=parking)

    read_before.capacity = 50
    read_before.save()

    assert counter(parking) == 2


def test_the_database_refuses_a_negative_count():
    parking = SecuredParkingFactory()
    ParkingSessionFactory(secured_parking=parking)

    assert refused_by_the_database(
        lambda: ParkingOccupancy.objects.filter(pk=parking.pk).update(parked=-1)
    )
    count_car_out(secured_parking_id=parking.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        count_car_out(secured_parking_id=parking.pk)
    assert counter(parking) == 0


class TestRecount:
    def test_repairs_every_counter_that_differs_and_logs_it(self, caplog):
        too_high, too_low, no_row, right = SecuredParkingFactory.create_batch(4)
        ParkingSessionFactory.create_batch(2, secured_parking=too_high)
        ParkingSessionFactory.create_batch(2, secured_parking=too_low)
        ParkingSessionFactory(secured_parking=right, state=State.EXITING)
        ParkingSessionFactory(
            secured_parking=right,
            state=State.FINISHED,
            start_time=timezone.now() - timedelta(hours=1),
            end_time=timezone.now(),
        )
        # Writes that went around the services.
        ParkingSession.objects.filter(secured_parking=too_high).update(state=State.CANCELLED)
        ParkingOccupancy.objects.filter(pk=too_low.pk).update(parked=0)
        ParkingSessionFactory.create_batch(3, secured_parking=no_row, state=State.ENTERING)
        ParkingSession.objects.filter(secured_parking=no_row).update(state=State.ACTIVE)

        with caplog.at_level(logging.WARNING, logger="parking.services.occupancy"):
            drifts = recount_occupancy()

        assert drifts == [
            OccupancyDrift(secured_parking_id=too_high.pk, counted=2, parked=0),
            OccupancyDrift(secured_parking_id=too_low.pk, counted=0, parked=2),
            OccupancyDrift(secured_parking_id=no_row.pk, counted=0, parked=3),
        ]
        assert [counter(p) for p in (too_high, too_low, no_row, right)] == [0, 2, 3, 1]
        assert [record.getMessage() for record in caplog.records] == [
            f"Occupancy of secured parking {too_high.pk} drifted: the counter said 2 parked, "
            "the sessions 0; repaired.",
            f"Occupancy of secured parking {too_low.pk} drifted: the counter said 0 parked, "
            "the sessions 2; repaired.",
            f"Occupancy of secured parking {no_row.pk} drifted: the counter said 0 parked, "
            "the sessions 3; repaired.",
        ]
        assert recount_occupancy() == []

    def test_the_command_prints_what_it_repaired(self, capsys):
        parking = SecuredParkingFactory()
        ParkingSessionFactory(secured_parking=parking)
        ParkingOccupancy.objects.filter(pk=parking.pk).update(parked=5)

        call_command("recount_occupancy")

        assert capsys.readouterr().out.splitlines() == [
            f"Secured parking #{parking.pk}: counted 5 parked, the sessions 1; repaired.",
            "Occupancy recounted: 1 counter(s) repaired.",
        ]
        assert counter(parking) == 1

    @pytest.mark.postgres
    def test_the_worker_recounts_every_hour(self, job_worker):
        parking = SecuredParkingFactory()
        ParkingSessionFactory(secured_parking=parking)
        ParkingOccupancy.objects.filter(pk=parking.pk).update(parked=7)
        job_worker()

        defer_periodic_now(recount_occupancy_job)

        wait_until(lambda: "succeeded" in statuses("parking.recount_occupancy"), what="recount")
        assert counter(parking) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_first_cars_entering_a_parking_at_once_are_all_counted():
    parking = SecuredParkingFactory()
    sessions = ParkingSessionFactory.create_batch(12, secured_parking=parking, state=State.ENTERING)
    assert not ParkingOccupancy.objects.filter(pk=parking.pk).exists()

    answers = fire_together(
        [
            partial(session_action, bearer_client(AccessTokenFactory(user=s.driver)), s.pk, "enter")
            for s in sessions
        ]
    )

    assert {answer.status for answer in answers} == {200}
    assert counter(parking) == 12


# The random mix: each round, every driver takes the next step their session allows (or
# starts one, or deletes their account), back-office staff finalize and cancel, the clean-up
# writes down stale sessions and the recount runs, all in threads released at once.

ROUNDS = 10
DRIVERS = 20
CAPACITIES = (3, 5, 7)
PASSWORD = "correct-horse-battery"  # DriverFactory's

NEXT_STEPS = {
    None: ["start"] * 10 + ["start_left_to_go_stale"] * 2 + ["nothing"] * 2 + ["delete_account"],
    State.ENTERING: ["enter"] * 3 + ["cancel", "entrance_try", "cancel_by_operator"],
    State.ACTIVE: ["exit"] * 3 + ["finalize_by_operator", "cancel_by_operator", "nothing"],
    State.EXITING: ["finalize"] * 3 + ["finalize_by_operator", "exit_try"],
}


ANSWERED_BY_THE_API = {"start", "delete_account", "enter", "cancel", "entrance_try", "exit"}
ANSWERED_BY_THE_API |= {"exit_try", "finalize"}


class Mix:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.parkings = [SecuredParkingFactory(capacity=capacity) for capacity in CAPACITIES]
        self.operator = SuperuserFactory()
        drivers = DriverFactory.create_batch(DRIVERS)
        self.clients = {d.pk: bearer_client(AccessTokenFactory(user=d)) for d in drivers}
        self.drivers = {d.pk: d for d in drivers}
        self.done: list[tuple[str, object]] = []

    def round(self) -> None:
        now = timezone.now()
        steps = [self.step_of(driver_id, now) for driver_id in list(self.drivers)]
        steps += [self.clean_up, self.recount]
        self.done += run_together(steps)

    def step_of(self, driver_id: int, now):
        session = (
            ParkingSession.objects.for_driver(driver_id).open(now).order_by("-start_time").first()
        )
        step = self.rng.choice(NEXT_STEPS[None if session is None else session.state])
        client = self.clients[driver_id]
        if step == "start":
            return partial(self.answer, step, start_session, client, self.rng.choice(self.parkings))
        if step == "start_left_to_go_stale":
            parking = self.rng.choice(self.parkings)
            return partial(self.start_stale, self.drivers[driver_id], parking, now)
        if step == "delete_account":
            del self.drivers[driver_id]
            return partial(
                self.answer, step, client.delete, "/api/car_driver/account",
                {"password": PASSWORD}, format="json",
            )  # fmt: skip
        if step.endswith("_by_operator"):
            action = finalize_by_operator if step.startswith("finalize") else cancel_by_operator
            return partial(self.back_office, step, action, session)
        if step == "nothing":
            return lambda: (step, None)
        assert session is not None
        return partial(self.answer, step, session_action, client, session.pk, step)

    @staticmethod
    def answer(step, request, *args, **kwargs):
        response = request(*args, **kwargs)
        return step, response.status_code

    @staticmethod
    def start_stale(driver, parking, now):
        # A driver who started and never came: the session goes stale at once.
        try:
            start_parking_session(
                driver=driver, secured_parking=parking, now=now - timedelta(minutes=16)
            )
        except DomainError as refusal:
            return "start_left_to_go_stale", refusal.code
        return "start_left_to_go_stale", 201

    def back_office(self, step, action, session):
        try:
            action(session=session, actor=self.operator, reason="Mix", now=timezone.now())
        except DomainError as refusal:
            return step, refusal.code
        return step, 200

    @staticmethod
    def clean_up():
        return "clean_up", cancel_stale_entering_sessions(now=timezone.now())

    @staticmethod
    def recount():
        # Running beside the changes, it must find nothing to repair.
        return "recount", recount_occupancy()

    def check(self) -> None:
        now = timezone.now()
        for parking in self.parkings:
            assert counter(parking) == parked_sessions(parking), parking
            assert (
                occupied(parking, now)
                == ParkingSession.objects.filter(secured_parking=parking).open(now).count()
            )
            assert occupied(parking, now) <= parking.capacity


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_a_random_mix_of_everything_the_counters_equal_a_recount():
    mix = Mix(random.Random(19))

    for _ in range(ROUNDS):
        mix.round()
        mix.check()

    answered = {status for step, status in mix.done if step in ANSWERED_BY_THE_API}
    assert answered <= {200, 201, 204, 409}, answered
    assert [r for step, r in mix.done if step == "recount"] == [[]] * ROUNDS
    assert recount_occupancy() == []
    # The mix did what it is for.
    states = set(ParkingSession.objects.values_list("state", flat=True))
    assert {State.FINISHED, State.CANCELLED} <= states
    assert ("start", 409) in mix.done, "no start found a parking full"
    assert sum(r for step, r in mix.done if step == "clean_up") > 0
    assert SessionAuditEntry.objects.exists()
    assert ("delete_account", 204) in mix.done
    assert ParkingSession.objects.filter(state__in=OPEN_STATES).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_cars_parked_and_goes_back():
    parking, other = SecuredParkingFactory.create_batch(2)
    for state in (State.ACTIVE, State.EXITING, State.ENTERING):
        ParkingSessionFactory(secured_parking=parking, state=state)
    ParkingSessionFactory(
        secured_parking=parking,
        state=State.FINISHED,
        start_time=timezone.now() - timedelta(hours=1),
        end_time=timezone.now(),
    )
    ParkingSessionFactory(secured_parking=other, state=State.ACTIVE)
    executor = MigrationExecutor(connection)
    before = [("parking", "0012_refund_permission_and_audit")]

    executor.migrate(before)
    with connection.cursor() as cursor:
        assert "parking_parkingoccupancy" not in connection.introspection.table_names(cursor)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(ParkingOccupancy.objects.values_list("secured_parking", "parked")) == {
        parking.pk: 2,
        other.pk: 1,
    }
