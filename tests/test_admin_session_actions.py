"""Finalize, cancel and grant tries from the session list, with a reason, audited."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from parking.admin import MAX_SESSIONS_PER_ACTION
from parking.models import AuditAction, ParkingSession, SessionAuditEntry, State
from tests.back_office import change_url, changelist_url, listed
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return OperatorFactory(name="Cluj Parking SRL")


@pytest.fixture
def parking(operator):
    return SecuredParkingFactory(operator=operator, access_points=1)


@pytest.fixture
def staff(operator):
    return OperatorStaffFactory(operator=operator, email="ana@cluj-parking.ro")


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def a_session(parking, **kwargs) -> ParkingSession:
    kwargs.setdefault("start_time", timezone.now() - timedelta(hours=1, minutes=10))
    kwargs.setdefault("smart_key__start_time", kwargs["start_time"])
    return ParkingSessionFactory(secured_parking=parking, **kwargs)


def run_action(client, action: str, sessions, **confirmation) -> object:
    data = {"action": action, "_selected_action": [s.pk for s in sessions]}
    if confirmation:
        data.update(confirm="yes", **confirmation)
    else:
        data["index"] = 0
    return client.post(changelist_url(ParkingSession), data)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_action_first_asks_for_a_reason_on_a_page_listing_the_sessions(staff_client, parking):
    session = a_session(parking)

    response = run_action(staff_client, "finalize_sessions", [session])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/parking/parkingsession/action_confirmation.html"
    assert response.context["rows"] == [(session, Decimal("10.00"))]
    assert "reason" in response.context["form"].fields
    assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE


def test_without_a_reason_nothing_happens(staff_client, parking):
    session = a_session(parking)

    response = run_action(staff_client, "finalize_sessions", [session], reason="   ")

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE
    assert not SessionAuditEntry.objects.exists()


def test_finalizing_from_the_list_closes_the_session_and_records_who_and_why(
    staff_client, staff, parking
):
    session = a_session(parking)

    response = run_action(
        staff_client, "finalize_sessions", [session], reason="App crashed at the exit"
    )

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.state, session.amount) == (State.FINISHED, Decimal("10.00"))
    entry = session.audit_entries.get()
    assert (entry.actor, entry.action, entry.reason) == (
        staff,
        AuditAction.FINALIZE,
        "App crashed at the exit",
    )
    assert messages_of(response) == [f"1 session finalized: #{session.pk}."]


def test_a_refused_session_is_reported_and_does_not_stop_the_others(staff_client, parking):
    active = a_session(parking)
    finished = a_session(parking, state=State.FINISHED, end_time=timezone.now())

    response = run_action(staff_client, "finalize_sessions", [active, finished], reason="Tidy")

    assert ParkingSession.objects.get(pk=active.pk).state == State.FINISHED
    assert sorted(messages_of(response)) == sorted(
        [
            f"1 session finalized: #{active.pk}.",
            f"Session #{finished.pk}: Cannot finalize a session that is finished; "
            "it must be active or exiting.",
        ]
    )
    assert SessionAuditEntry.objects.count() == 1


def test_cancelling_from_the_list_waives_the_stay(staff_client, parking):
    session = a_session(parking)

    run_action(staff_client, "cancel_sessions", [session], reason="Car never got in")

    session.refresh_from_db()
    assert (session.state, session.amount) == (State.CANCELLED, Decimal("0.00"))
    assert session.audit_entries.get().action == AuditAction.CANCEL


def test_granting_tries_from_the_list_helps_a_driver_stuck_at_the_barrier(staff_client, parking):
    session = a_session(parking, state=State.EXITING, exit_remaining_tries=0)

    form_page = run_action(staff_client, "grant_extra_tries", [session])
    response = run_action(
        staff_client,
        "grant_extra_tries",
        [session],
        reason="Stuck at the exit, phone lost the connection",
        entrance_tries=0,
        exit_tries=2,
    )

    assert set(form_page.context["form"].fields) == {"reason", "entrance_tries", "exit_tries"}
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.exit_remaining_tries == 2
    assert session.audit_entries.get().action == AuditAction.GRANT_TRIES


def test_granting_no_tries_at_all_is_refused_by_the_form(staff_client, parking):
    session = a_session(parking, state=State.EXITING, exit_remaining_tries=0)

    response = run_action(
        staff_client, "grant_extra_tries", [session], reason="x", entrance_tries=0, exit_tries=0
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Grant at least one entrance or exit try."
    ]


def test_the_session_page_shows_the_audit_trail(staff_client, parking):
    session = a_session(parking)
    run_action(staff_client, "finalize_sessions", [session], reason="App crashed at the exit")

    page = staff_client.get(change_url(session)).content.decode()

    assert "Audit trail" in page
    assert "App crashed at the exit" in page
    assert "ana@cluj-parking.ro" in page
    assert "active → finished" in page
    assert "0.00 → 10.00" in page


def test_staff_who_may_only_look_get_no_actions(operator, parking):
    session = a_session(parking)
    viewer = DriverFactory(is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_parkingsession", "view_securedparking"])
    )
    operator.memberships.create(user=viewer)
    client = Client()
    client.force_login(viewer)

    response = client.get(changelist_url(ParkingSession))
    run_action(client, "finalize_sessions", [session], reason="Sneaky")

    assert listed(response) == [session]
    assert response.context["action_form"] is None
    assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE


def test_an_action_on_more_than_a_page_of_sessions_is_refused(staff_client, parking):
    sessions = [
        a_session(parking, driver=DriverFactory(), state=State.FINISHED)
        for _ in range(MAX_SESSIONS_PER_ACTION + 1)
    ]

    response = run_action(staff_client, "finalize_sessions", sessions)

    assert response.status_code == 302
    assert messages_of(response) == [
        f"Select at most {MAX_SESSIONS_PER_ACTION} sessions at a time."
    ]


def test_the_session_list_shows_state_driver_parking_start_duration_amount_and_tries(
    staff_client, parking
):
    a_session(parking, driver__email="maria@example.com", entrance_remaining_tries=1)

    page = staff_client.get(changelist_url(ParkingSession)).content.decode()

    for text in ["Active", "maria@example.com", parking.name, "1 h 10 min", "10.00 RON", "1 / 3"]:
        assert text in page
