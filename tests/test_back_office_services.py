from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError
from django.utils import timezone

from parking.exceptions import SessionStateError
from parking.models import AuditAction, ParkingSession, SessionAuditEntry, State
from parking.services import (
    OPERATOR_STAFF_GROUP,
    add_operator_staff,
    cancel_by_operator,
    finalize_by_operator,
    grant_extra_tries,
)
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def staff():
    return OperatorStaffFactory()


def a_session(**kwargs) -> ParkingSession:
    """A session in a parking with 5.00 per started hour after 15 free minutes."""
    kwargs.setdefault("start_time", NOW - timedelta(hours=1, minutes=10))
    kwargs.setdefault("smart_key__start_time", kwargs["start_time"])
    return ParkingSessionFactory(secured_parking__access_points=1, **kwargs)


def test_finalizing_an_active_session_fixes_the_amount_due_now_and_closes_it(staff):
    session = a_session(state=State.ACTIVE)

    finalize_by_operator(session=session, actor=staff, reason="App crashed at the exit", now=NOW)

    session.refresh_from_db()
    assert session.state == State.FINISHED
    assert session.end_time == NOW
    assert session.amount == Decimal("10.00")  # two started hours
    assert session.smart_key.end_time == NOW


def test_finalizing_an_exiting_session_keeps_the_amount_fixed_at_the_exit(staff):
    session = a_session(state=State.EXITING, amount=Decimal("4.17"))

    finalize_by_operator(session=session, actor=staff, reason="Barrier lifted by hand", now=NOW)

    session.refresh_from_db()
    assert (session.state, session.amount) == (State.FINISHED, Decimal("4.17"))


def test_finalizing_writes_who_when_why_and_what_changed(staff):
    session = a_session(state=State.ACTIVE)

    finalize_by_operator(session=session, actor=staff, reason="  App crashed  ", now=NOW)

    entry = SessionAuditEntry.objects.get()
    assert (entry.session, entry.actor, entry.action) == (session, staff, AuditAction.FINALIZE)
    assert (entry.reason, entry.created_at) == ("App crashed", NOW)
    assert entry.details["state"] == ["active", "finished"]
    assert entry.details["amount"] == ["0.00", "10.00"]


@pytest.mark.parametrize("state", [State.ENTERING, State.FINISHED, State.CANCELLED])
def test_finalizing_is_refused_unless_active_or_exiting_and_changes_nothing(staff, state):
    session = a_session(state=state, start_time=NOW - timedelta(minutes=1))
    before = ParkingSession.objects.values().get(pk=session.pk)

    with pytest.raises(SessionStateError, match=f"finalize a session that is {state}"):
        finalize_by_operator(session=session, actor=staff, reason="Why not", now=NOW)

    assert ParkingSession.objects.values().get(pk=session.pk) == before
    assert not SessionAuditEntry.objects.exists()


def test_an_entering_session_past_its_deadline_counts_as_cancelled(staff):
    session = a_session(state=State.ENTERING, start_time=NOW - timedelta(hours=1))

    with pytest.raises(SessionStateError, match="expired"):
        cancel_by_operator(session=session, actor=staff, reason="Gave up", now=NOW)


@pytest.mark.parametrize("state", [State.ENTERING, State.ACTIVE])
def test_cancelling_ends_the_session_now_with_nothing_due(staff, state):
    session = a_session(state=state, start_time=NOW - timedelta(minutes=5), amount="3.00")

    cancel_by_operator(session=session, actor=staff, reason="Car never got in", now=NOW)

    session.refresh_from_db()
    assert (session.state, session.amount, session.end_time) == (State.CANCELLED, 0, NOW)
    assert session.smart_key.end_time == NOW
    entry = SessionAuditEntry.objects.get()
    assert entry.action == AuditAction.CANCEL
    assert entry.details["state"] == [state, "cancelled"]


@pytest.mark.parametrize("state", [State.EXITING, State.FINISHED, State.CANCELLED])
def test_cancelling_is_refused_once_the_amount_is_fixed_or_the_session_closed(staff, state):
    session = a_session(state=state, amount="4.17")

    with pytest.raises(SessionStateError, match=f"cancel a session that is {state}"):
        cancel_by_operator(session=session, actor=staff, reason="Waive it", now=NOW)

    session.refresh_from_db()
    assert (session.state, session.amount) == (state, Decimal("4.17"))


def test_granting_tries_adds_to_what_is_left_and_is_audited(staff):
    session = a_session(state=State.EXITING, entrance_remaining_tries=0, exit_remaining_tries=0)

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


def test_granting_tries_increments_in_sql_so_a_try_spent_meanwhile_is_not_lost(staff):
    session = a_session(state=State.ENTERING, start_time=NOW - timedelta(minutes=1))
    stale_copy = ParkingSession.objects.get(pk=session.pk)
    # The driver spends a try after the operator's page read the session.
    ParkingSession.objects.filter(pk=session.pk).update(entrance_remaining_tries=0)

    grant_extra_tries(
        session=stale_copy, actor=staff, entrance_tries=1, exit_tries=0, reason="Stuck", now=NOW
    )

    session.refresh_from_db()
    assert session.entrance_remaining_tries == 1


@pytest.mark.parametrize("state", [State.FINISHED, State.CANCELLED])
def test_granting_tries_to_a_closed_session_is_refused(staff, state):
    session = a_session(state=state)

    with pytest.raises(SessionStateError, match=f"grant tries to a session that is {state}"):
        grant_extra_tries(
            session=session, actor=staff, entrance_tries=1, exit_tries=1, reason="x", now=NOW
        )


@pytest.mark.parametrize(("entrance", "exit_"), [(0, 0), (-1, 2), (11, 0)])
def test_granting_tries_needs_a_sensible_number(staff, entrance, exit_):
    session = a_session(state=State.ACTIVE)

    with pytest.raises(ValueError):
        grant_extra_tries(
            session=session, actor=staff, entrance_tries=entrance, exit_tries=exit_,
            reason="x", now=NOW,
        )  # fmt: skip


@pytest.mark.parametrize("service", [finalize_by_operator, cancel_by_operator])
@pytest.mark.parametrize("reason", ["", "   "])
def test_every_operator_action_needs_a_reason(staff, service, reason):
    session = a_session(state=State.ACTIVE)

    with pytest.raises(ValueError, match="reason"):
        service(session=session, actor=staff, reason=reason, now=NOW)

    assert ParkingSession.objects.get(pk=session.pk).state == State.ACTIVE


def test_the_database_refuses_an_audit_entry_without_a_reason(staff):
    session = a_session()

    with pytest.raises(IntegrityError):
        SessionAuditEntry.objects.create(
            session=session, actor=staff, action=AuditAction.CANCEL, reason="", created_at=NOW
        )


def test_an_audited_session_cannot_be_deleted_with_its_trail(staff):
    session = a_session(state=State.ACTIVE)
    finalize_by_operator(session=session, actor=staff, reason="Done", now=NOW)

    with pytest.raises(Exception, match="protected"):
        session.delete()


def test_adding_operator_staff_makes_a_staff_member_with_the_group_permissions():
    user = DriverFactory()
    operator = OperatorFactory()

    add_operator_staff(user=user, operator=operator)
    add_operator_staff(user=user, operator=operator)  # idempotent

    user = type(user).objects.get(pk=user.pk)
    assert user.is_staff and not user.is_superuser
    assert list(user.operator_memberships.values_list("operator", flat=True)) == [operator.pk]
    assert user.groups.get() == Group.objects.get(name=OPERATOR_STAFF_GROUP)
    assert user.has_perms(
        [
            "parking.view_parkingsession",
            "parking.operate_parkingsession",
            "parking.change_securedparking",
            "parking.change_tariff",
            "smart_keys.add_accesspoint",
            "smart_keys.view_smartkey",
            "smart_keys.view_accesslogentry",
        ]
    )
    assert not user.has_perm("parking.change_parkingsession")
    assert not user.has_perm("parking.delete_securedparking")
    assert not user.has_perm("parking.view_operator")
    assert not user.has_perm("accounts.view_user")
