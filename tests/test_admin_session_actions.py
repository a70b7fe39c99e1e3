"""Finalize, cancel and grant tries to a session, for an operator, with a reason, audited:
from the session list in the back office, and the services that do it, whoever calls them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.test import Client
from django.utils import timezone

from parking.exceptions import SessionStateError
from parking.models import AuditAction, ParkingSession, SessionAuditEntry, State
from parking.services.back_office import cancel_by_operator, finalize_by_operator, grant_extra_tries
from tests.back_office import change_url, changelist_url, listed
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    finished_sessions,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
ACTION_CAP = 100  # parking.admin: sessions one action takes at a time


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


def a_session(parking, *, now=None, **kwargs) -> ParkingSession:
    """A session at ``parking`` (5.00 per started hour after 15 free minutes) that started
    1 h 10 min before ``now``, by default the real now: 10.00 due."""
    kwargs.setdefault("start_time", (now or timezone.now()) - timedelta(hours=1, minutes=10))
    kwargs.setdefault("smart_key__start_time", kwargs["start_time"])
    return ParkingSessionFactory(secured_parking=parking, **kwargs)


def sessions_at(parking, count: int) -> list[ParkingSession]:
    """``count`` finished sessions at ``parking``, newest first like the session list."""
    sessions = finished_sessions(
        parking,
        [DriverFactory()],
        count,
        first_start=NOW - timedelta(days=count),
        step=timedelta(hours=2),
    )
    return sorted(sessions, key=lambda session: session.start_time, reverse=True)


def run_action(client, action: str, sessions, **confirmation) -> object:
    data = {"action": action, "_selected_action": [s.pk for s in sessions]}
    if confirmation:
        data.update(confirm="yes", **confirmation)
    else:
        data["index"] = 0
    return client.post(changelist_url(ParkingSession), data)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


class TestFromTheSessionList:
    """The admin actions on the selected sessions of the session list."""

    def test_an_action_first_asks_for_a_reason_on_a_page_listing_the_sessions(
        self, staff_client, parking
    ):
        session = a_session(parking)

        response = run_action(staff_client, "finalize_sessions", [session])

        assert response.status_code == 200
        assert response.templates[0].name == "admin/parking/parkingsession/action_confirmation.html"
        assert response.context["rows"] == [(session, Decimal("10.00"))]
        assert "reason" in response.context["form"].fields
        assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE

    def test_without_a_reason_nothing_happens(self, staff_client, parking):
        session = a_session(parking)

        response = run_action(staff_client, "finalize_sessions", [session], reason="   ")

        assert response.status_code == 200
        assert response.context["form"].errors == {"reason": ["This field is required."]}
        assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE
        assert not SessionAuditEntry.objects.exists()

    def test_finalizing_from_the_list_closes_the_session_and_records_who_and_why(
        self, staff_client, staff, parking
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

    def test_a_refused_session_is_reported_and_does_not_stop_the_others(
        self, staff_client, parking
    ):
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

    def test_cancelling_from_the_list_waives_the_stay(self, staff_client, parking):
        session = a_session(parking)

        run_action(staff_client, "cancel_sessions", [session], reason="Car never got in")

        session.refresh_from_db()
        assert (session.state, session.amount) == (State.CANCELLED, Decimal("0.00"))
        assert session.audit_entries.get().action == AuditAction.CANCEL

    def test_granting_tries_from_the_list_helps_a_driver_stuck_at_the_barrier(
        self, staff_client, parking
    ):
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

    def test_granting_no_tries_at_all_is_refused_by_the_form(self, staff_client, parking):
        session = a_session(parking, state=State.EXITING, exit_remaining_tries=0)

        response = run_action(
            staff_client, "grant_extra_tries", [session], reason="x", entrance_tries=0, exit_tries=0
        )

        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == [
            "Grant at least one entrance or exit try."
        ]

    def test_the_session_page_shows_the_audit_trail(self, staff_client, parking):
        session = a_session(parking)
        run_action(staff_client, "finalize_sessions", [session], reason="App crashed at the exit")

        page = staff_client.get(change_url(session)).content.decode()

        assert "Audit trail" in page
        assert "App crashed at the exit" in page
        assert "ana@cluj-parking.ro" in page
        assert "active → finished" in page
        assert "0.00 → 10.00" in page

    def test_staff_who_may_only_look_get_no_actions(self, operator, parking):
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

    def test_an_action_on_more_than_a_page_of_sessions_is_refused(self, staff_client, parking):
        sessions = sessions_at(parking, ACTION_CAP + 1)

        response = run_action(staff_client, "finalize_sessions", sessions)

        assert response.status_code == 302
        assert messages_of(response) == ["Select at most 100 sessions at a time."]
        assert not SessionAuditEntry.objects.exists()

    def test_an_action_on_a_whole_page_of_sessions_asks_for_the_reason(self, staff_client, parking):
        sessions = sessions_at(parking, ACTION_CAP)

        response = run_action(staff_client, "finalize_sessions", sessions)

        assert response.status_code == 200
        assert messages_of(response) == []
        assert [session for session, _due in response.context["rows"]] == sessions

    def test_the_session_list_shows_state_driver_parking_start_duration_amount_and_tries(
        self, staff_client, parking
    ):
        a_session(parking, driver__email="maria@example.com", entrance_remaining_tries=1)

        page = staff_client.get(changelist_url(ParkingSession)).content.decode()

        for text in [
            "Active",
            "maria@example.com",
            parking.name,
            "1 h 10 min",
            "10.00 RON",
            "1 / 3",
        ]:
            assert text in page


class TestTheServices:
    """parking.services: what the actions run, with the rules they enforce."""

    def test_finalizing_an_active_session_fixes_the_amount_due_now_and_closes_it(
        self, staff, parking
    ):
        session = a_session(parking, now=NOW, state=State.ACTIVE)

        finalize_by_operator(
            session=session, actor=staff, reason="App crashed at the exit", now=NOW
        )

        session.refresh_from_db()
        assert session.state == State.FINISHED
        assert session.end_time == NOW
        assert session.amount == Decimal("10.00")  # two started hours
        assert session.smart_key.end_time == NOW

    def test_finalizing_an_exiting_session_keeps_the_amount_fixed_at_the_exit(self, staff, parking):
        session = a_session(parking, now=NOW, state=State.EXITING, amount=Decimal("4.17"))

        finalize_by_operator(session=session, actor=staff, reason="Barrier lifted by hand", now=NOW)

        session.refresh_from_db()
        assert (session.state, session.amount) == (State.FINISHED, Decimal("4.17"))

    def test_finalizing_writes_who_when_why_and_what_changed(self, staff, parking):
        session = a_session(parking, now=NOW, state=State.ACTIVE)

        finalize_by_operator(session=session, actor=staff, reason="  App crashed  ", now=NOW)

        entry = SessionAuditEntry.objects.get()
        assert (entry.session, entry.actor, entry.action) == (session, staff, AuditAction.FINALIZE)
        assert (entry.reason, entry.created_at) == ("App crashed", NOW)
        assert entry.details["state"] == ["active", "finished"]
        assert entry.details["amount"] == ["0.00", "10.00"]

    @pytest.mark.parametrize("state", [State.ENTERING, State.FINISHED, State.CANCELLED])
    def test_finalizing_is_refused_unless_active_or_exiting_and_changes_nothing(
        self, staff, parking, state
    ):
        session = a_session(parking, now=NOW, state=state, start_time=NOW - timedelta(minutes=1))
        before = ParkingSession.objects.values().get(pk=session.pk)

        with pytest.raises(SessionStateError, match=f"finalize a session that is {state}"):
            finalize_by_operator(session=session, actor=staff, reason="Why not", now=NOW)

        assert ParkingSession.objects.values().get(pk=session.pk) == before
        assert not SessionAuditEntry.objects.exists()

    def test_an_entering_session_past_its_deadline_counts_as_cancelled(self, staff, parking):
        session = a_session(
            parking, now=NOW, state=State.ENTERING, start_time=NOW - timedelta(hours=1)
        )

        with pytest.raises(SessionStateError, match="expired"):
            cancel_by_operator(session=session, actor=staff, reason="Gave up", now=NOW)

    @pytest.mark.parametrize("state", [State.ENTERING, State.ACTIVE])
    def test_cancelling_ends_the_session_now_with_nothing_due(self, staff, parking, state):
        session = a_session(
            parking, now=NOW, state=state, start_time=NOW - timedelta(minutes=5), amount="3.00"
        )

        cancel_by_operator(session=session, actor=staff, reason="Car never got in", now=NOW)

        session.refresh_from_db()
        assert (session.state, session.amount, session.end_time) == (State.CANCELLED, 0, NOW)
        assert session.smart_key.end_time == NOW
        entry = SessionAuditEntry.objects.get()
        assert entry.action == AuditAction.CANCEL
        assert entry.details["state"] == [state, "cancelled"]

    @pytest.mark.parametrize("state", [State.EXITING, State.FINISHED, State.CANCELLED])
    def test_cancelling_is_refused_once_the_amount_is_fixed_or_the_session_closed(
        self, staff, parking, state
    ):
        session = a_session(parking, now=NOW, state=state, amount="4.17")

        with pytest.raises(SessionStateError, match=f"cancel a session that is {state}"):
            cancel_by_operator(session=session, actor=staff, reason="Waive it", now=NOW)

        session.refresh_from_db()
        assert (session.state, session.amount) == (state, Decimal("4.17"))

    def test_granting_tries_adds_to_what_is_left_and_is_audited(self, staff, parking):
        session = a_session(
            parking,
            now=NOW,
            state=State.EXITING,
            entrance_remaining_tries=0,
            exit_remaining_tries=0,
        )

        grant_extra_tries(
            session=session, actor=staff, entrance_tries=0, exit_tries=2,
            reason="Stuck at the exit barrier", now=NOW,
        )  # fmt: skip

        session.refresh_from_db()
        assert (session.entrance_remaining_tries, session.exit_remaining_tries) == (0, 2)
        entry = SessionAuditEntry.objects.get()
        assert entry.action == AuditAction.GRANT_TRIES
        assert entry.details["exit_remaining_tries"] == [0, 2]
        assert entry.details["exit_tries_granted"] == 2

    def test_granting_tries_increments_in_sql_so_a_try_spent_meanwhile_is_not_lost(
        self, staff, parking
    ):
        session = a_session(
            parking, now=NOW, state=State.ENTERING, start_time=NOW - timedelta(minutes=1)
        )
        stale_copy = ParkingSession.objects.get(pk=session.pk)
        # The driver spends a try after the operator's page read the session.
        ParkingSession.objects.filter(pk=session.pk).update(entrance_remaining_tries=0)

        grant_extra_tries(
            session=stale_copy, actor=staff, entrance_tries=1, exit_tries=0, reason="Stuck", now=NOW
        )

        session.refresh_from_db()
        assert session.entrance_remaining_tries == 1

    @pytest.mark.parametrize("state", [State.FINISHED, State.CANCELLED])
    def test_granting_tries_to_a_closed_session_is_refused(self, staff, parking, state):
        session = a_session(parking, now=NOW, state=state)

        with pytest.raises(SessionStateError, match=f"grant tries to a session that is {state}"):
            grant_extra_tries(
                session=session, actor=staff, entrance_tries=1, exit_tries=1, reason="x", now=NOW
            )

    @pytest.mark.parametrize(("entrance", "exit_"), [(0, 0), (-1, 2), (11, 0)])
    def test_granting_tries_needs_a_sensible_number(self, staff, parking, entrance, exit_):
        session = a_session(parking, now=NOW, state=State.ACTIVE)

        with pytest.raises(ValueError):
            grant_extra_tries(
                session=session, actor=staff, entrance_tries=entrance, exit_tries=exit_,
                reason="x", now=NOW,
            )  # fmt: skip

    @pytest.mark.parametrize("service", [finalize_by_operator, cancel_by_operator])
    @pytest.mark.parametrize("reason", ["", "   "])
    def test_every_operator_action_needs_a_reason(self, staff, parking, service, reason):
        session = a_session(parking, now=NOW, state=State.ACTIVE)

        with pytest.raises(ValueError, match="reason"):
            service(session=session, actor=staff, reason=reason, now=NOW)

        assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE

    def test_the_database_refuses_an_audit_entry_without_a_reason(self, staff, parking):
        session = a_session(parking, now=NOW)

        with pytest.raises(IntegrityError):
            SessionAuditEntry.objects.create(
                session=session, actor=staff, action=AuditAction.CANCEL, reason="", created_at=NOW
            )

    def test_an_audited_session_cannot_be_deleted_with_its_trail(self, staff, parking):
        session = a_session(parking, now=NOW, state=State.ACTIVE)
        finalize_by_operator(session=session, actor=staff, reason="Done", now=NOW)

        with pytest.raises(ProtectedError, match="protected"):
            session.delete()
