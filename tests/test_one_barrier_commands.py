"""One command, one barrier: the app names the barrier it sees (``access_point_id``) and the
command it gets opens that barrier alone; a parking can require it."""

import pytest
from django.utils import timezone

from parking.models import ParkingSession
from smart_keys.access_commands import AccessCommandRefused, verify_access_command
from smart_keys.models import AccessEvent, AccessLogEntry, AccessResult, Direction
from smart_keys.selectors import trusted_barrier_keys
from tests.api import SESSIONS_URL, act, error_body, field_errors, json_body, session_url
from tests.factories import AccessPointFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=2)


def barriers(parking, direction: Direction) -> list:
    return list(parking.access_points.filter(direction=direction).order_by("id"))


def opens(command: str, parking, barrier) -> bool:
    """Whether ``barrier`` opens for ``command``, as a barrier verifies it."""
    now = timezone.now()
    keys = trusted_barrier_keys(now=now, secured_parking_id=parking.pk)
    try:
        verify_access_command(command, keys, barrier.mac_address, now, None)
    except AccessCommandRefused as refusal:
        assert refusal.reason == "wrong_access_point", refusal.reason
        return False
    return True


def start(client, parking, **body):
    return client.post(SESSIONS_URL, {"secured_parking_id": parking.pk, **body}, format="json")


def post(client, session_id: int, action: str, **body):
    return client.post(session_url(session_id, action), body, format="json")


def command_of(body: dict) -> str:
    return body["smart_key"]["access_command"]


class TestTheNamedBarrierAlone:
    def test_the_first_command_opens_the_entrance_the_phone_sees_and_no_other(
        self, driver_client, parking
    ):
        seen, other = barriers(parking, Direction.ENTRANCE)

        body = json_body(start(driver_client, parking, access_point_id=seen.pk), 201)

        assert opens(command_of(body), parking, seen)
        assert not opens(command_of(body), parking, other)

    def test_each_command_of_the_journey_names_the_barrier_of_its_call(
        self, driver_client, parking
    ):
        first, second = barriers(parking, Direction.ENTRANCE)
        (exit_barrier,) = barriers(parking, Direction.EXIT)
        session_id = json_body(start(driver_client, parking), 201)["parking_session"]["id"]

        tried = json_body(
            post(driver_client, session_id, "entrance_try", access_point_id=second.pk), 200
        )
        act(driver_client, session_id, "enter")
        exiting = json_body(
            post(driver_client, session_id, "exit", access_point_id=exit_barrier.pk), 200
        )
        exit_tried = json_body(
            post(driver_client, session_id, "exit_try", access_point_id=exit_barrier.pk), 200
        )

        assert (
            opens(command_of(tried), parking, second),
            opens(command_of(tried), parking, first),
        ) == (True, False)
        assert opens(command_of(exiting), parking, exit_barrier)
        assert opens(command_of(exit_tried), parking, exit_barrier)

    def test_without_it_the_command_still_opens_every_barrier_of_the_direction(
        self, driver_client, parking
    ):
        body = json_body(start(driver_client, parking), 201)

        assert all(
            opens(command_of(body), parking, b) for b in barriers(parking, Direction.ENTRANCE)
        )

    def test_the_body_is_the_same_but_for_the_command(
        self, driver_client, make_driver_client, parking
    ):
        seen = barriers(parking, Direction.ENTRANCE)[0]
        named = json_body(start(driver_client, parking, access_point_id=seen.pk), 201)
        plain = json_body(start(make_driver_client(), parking), 201)

        def shape(body):
            key = {
                **body["smart_key"],
                "access_command": "…",
                "id": 0,
                "start_time": "",
                "end_time": "",
            }
            session = {**body["parking_session"], "id": 0, "start_time": ""}
            return {**body, "smart_key": key, "parking_session": session}

        assert shape(named) == shape(plain)
        assert len(named["smart_key"]["access_points"]) == 2

    def test_the_access_log_names_the_barrier_of_each_command(self, driver_client, parking):
        seen = barriers(parking, Direction.ENTRANCE)[1]
        session_id = json_body(start(driver_client, parking, access_point_id=seen.pk), 201)[
            "parking_session"
        ]["id"]
        post(driver_client, session_id, "entrance_try", access_point_id=seen.pk)

        entries = AccessLogEntry.objects.filter(parking_session_id=session_id).order_by("id")
        assert [(e.event, e.result, e.access_point_id) for e in entries] == [
            (AccessEvent.COMMAND_ISSUED, AccessResult.ISSUED, seen.pk),
            (AccessEvent.ENTRANCE_TRY, AccessResult.GRANTED, seen.pk),
            (AccessEvent.COMMAND_ISSUED, AccessResult.ISSUED, seen.pk),
        ]


class TestBarriersACallCannotName:
    def test_an_exit_barrier_at_the_start_is_400_and_starts_nothing(self, driver_client, parking):
        (exit_barrier,) = barriers(parking, Direction.EXIT)

        response = start(driver_client, parking, access_point_id=exit_barrier.pk)

        assert response.status_code == 400
        assert list(field_errors(response)) == ["access_point_id"]
        assert not ParkingSession.objects.exists()

    def test_another_parkings_barrier_is_400(self, driver_client, parking):
        elsewhere = AccessPointFactory(direction=Direction.ENTRANCE)

        response = start(driver_client, parking, access_point_id=elsewhere.pk)

        assert list(field_errors(response)) == ["access_point_id"]

    @pytest.mark.parametrize(
        ("action", "wrong_direction"),
        [("entrance_try", Direction.EXIT), ("exit", Direction.ENTRANCE)],
    )
    def test_a_barrier_of_the_other_direction_is_400_and_changes_nothing(
        self, driver_client, parking, action, wrong_direction
    ):
        session_id = json_body(start(driver_client, parking), 201)["parking_session"]["id"]
        if action == "exit":
            act(driver_client, session_id, "enter")
        before = driver_client.get(session_url(session_id)).json()

        response = post(
            driver_client,
            session_id,
            action,
            access_point_id=barriers(parking, wrong_direction)[0].pk,
        )

        assert response.status_code == 400
        assert list(field_errors(response)) == ["access_point_id"]
        assert driver_client.get(session_url(session_id)).json() == before

    @pytest.mark.parametrize("value", ["1", 1.5, True, None, 0, -1])
    def test_a_malformed_id_is_400(self, driver_client, parking, value):
        response = start(driver_client, parking, access_point_id=value)

        assert list(field_errors(response)) == ["access_point_id"]

    def test_the_other_actions_still_take_no_body(self, driver_client, parking):
        session_id = json_body(start(driver_client, parking), 201)["parking_session"]["id"]
        seen = barriers(parking, Direction.ENTRANCE)[0]

        response = post(driver_client, session_id, "enter", access_point_id=seen.pk)

        assert list(field_errors(response)) == ["access_point_id"]


class TestAParkingThatRequiresIt:
    @pytest.fixture
    def parking(self):
        return SecuredParkingFactory(access_points=2, access_point_required=True)

    def test_a_start_without_it_is_400_with_a_clear_message_and_starts_nothing(
        self, driver_client, parking
    ):
        response = start(driver_client, parking)

        assert response.status_code == 400
        assert error_body(response)["errors"] == [
            {
                "code": "required",
                "detail": "This parking needs the barrier the phone sees: send its "
                "access_point_id.",
                "attr": "access_point_id",
            }
        ]
        assert not ParkingSession.objects.exists()

    def test_every_call_that_issues_a_command_needs_it(self, driver_client, parking):
        entrance = barriers(parking, Direction.ENTRANCE)[0]
        (exit_barrier,) = barriers(parking, Direction.EXIT)
        session_id = json_body(start(driver_client, parking, access_point_id=entrance.pk), 201)[
            "parking_session"
        ]["id"]

        assert post(driver_client, session_id, "entrance_try").status_code == 400
        assert (
            post(driver_client, session_id, "entrance_try", access_point_id=entrance.pk).status_code
            == 200
        )
        act(driver_client, session_id, "enter")
        assert post(driver_client, session_id, "exit").status_code == 400
        assert (
            post(driver_client, session_id, "exit", access_point_id=exit_barrier.pk).status_code
            == 200
        )
        assert post(driver_client, session_id, "exit_try").status_code == 400
        body = json_body(
            post(driver_client, session_id, "exit_try", access_point_id=exit_barrier.pk), 200
        )
        assert body["parking_session"]["exit_remaining_tries"] == 2

    def test_the_refusal_speaks_romanian_when_asked(self, driver_client, parking):
        response = driver_client.post(
            SESSIONS_URL,
            {"secured_parking_id": parking.pk},
            format="json",
            HTTP_ACCEPT_LANGUAGE="ro",
        )

        assert error_body(response)["errors"][0]["detail"] == (
            "Această parcare are nevoie de bariera pe care o vede telefonul: trimiteți "
            "access_point_id-ul ei."
        )
