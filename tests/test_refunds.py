"""Refunds from the back office, full or partial, with a reason, audited, through the one
refund service: money goes back at Stripe (localstripe), the payment's refunded amount and
the session's amount follow in the same transaction, and nothing refunds more than came in."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from parking.models import AuditAction, ParkingSession, SessionAuditEntry
from parking.services.back_office import refund_by_operator
from payments import services as payments
from payments.exceptions import PaymentNotCaptured, RefundExceedsRefundable
from payments.models import Payment, PaymentState, Refund, RefundState
from tests.api import act, start_session
from tests.back_office import change_url, changelist_url
from tests.factories import (
    OperatorFactory,
    OperatorStaffFactory,
    SecuredParkingFactory,
)
from tests.jobs import wait_until
from tests.payments import save_card
from tests.refunds import captured_session, messages_of, post_refund, refunding_staff

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOUR_AND_TEN = timedelta(minutes=70)  # 10.00 at 5.00 per started hour after 15 free min


@pytest.fixture
def operator():
    return OperatorFactory(name="Cluj Parking SRL")


@pytest.fixture
def parking(operator):
    return SecuredParkingFactory(operator=operator, charges_by_card=True)


@pytest.fixture
def worker(job_worker, localstripe):
    return job_worker(env={"STRIPE_API_BASE": localstripe.url})


@pytest.fixture
def staff(operator):
    return refunding_staff(operator)


def test_a_full_refund_gives_everything_back_and_the_session_says_zero(
    localstripe, parking, worker, staff
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    before = localstripe.latest_charge(session.payment.hold_reference)["amount_refunded"]

    page = post_refund(staff, [session])
    assert page.status_code == 200
    assert "10.00 RON" in page.content.decode()  # left to refund
    response = post_refund(staff, [session], amount="", reason="Barrier stuck, driver waited")

    refund = Refund.objects.get()
    assert messages_of(response) == [
        f"Session #{session.pk}: 10.00 RON refunded ({refund.provider_reference})."
    ]
    assert (refund.state, refund.amount, refund.kept_after) == (
        RefundState.SUCCEEDED,
        Decimal("10.00"),
        Decimal("0.00"),
    )
    assert refund.reason == "Barrier stuck, driver waited"
    payment = Payment.objects.get(pk=session.payment_id)
    assert (payment.captured_amount, payment.refunded_amount) == (
        Decimal("10.00"),
        Decimal("10.00"),
    )
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("0.00")
    after = localstripe.latest_charge(session.payment.hold_reference)["amount_refunded"]
    assert after - before == 1000
    entry = SessionAuditEntry.objects.get(session=session, action=AuditAction.REFUND)
    assert entry.reason == "Barrier stuck, driver waited"
    assert entry.details["amount"] == ["10.00", "0.00"]
    assert entry.details["refunds"] == [f"#{refund.pk} 10.00 succeeded {refund.provider_reference}"]
    assert payment.events.filter(kind="refunded", amount=Decimal("10.00")).count() == 1
    call_command("reconcile_payments")


def test_partial_refunds_leave_the_rest_and_the_default_is_all_that_is_left(
    localstripe, parking, worker, staff
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)

    first = post_refund(staff, [session], amount="2.50", reason="Charged 30 min too long")
    assert "2.50 RON refunded" in messages_of(first)[0]
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("7.50")
    assert "7.50 RON" in post_refund(staff, [session]).content.decode()

    second = post_refund(staff, [session], reason="Goodwill: the rest")

    assert "7.50 RON refunded" in messages_of(second)[0]
    refunds = list(Refund.objects.order_by("pk").values_list("amount", "kept_after"))
    assert refunds == [(Decimal("2.50"), Decimal("7.50")), (Decimal("7.50"), Decimal("0.00"))]
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("0.00")
    assert Payment.objects.get(pk=session.payment_id).refunded_amount == Decimal("10.00")
    assert SessionAuditEntry.objects.filter(action=AuditAction.REFUND).count() == 2
    call_command("reconcile_payments")


def test_more_than_is_left_is_refused_with_a_message_and_nothing_moves(
    localstripe, parking, worker, staff
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    post_refund(staff, [session], amount="4.00", reason="Partial")

    response = post_refund(staff, [session], amount="6.01", reason="Too much")

    assert response.status_code == 200
    assert messages_of(response) == [
        f"Session #{session.pk}: 6.01 RON cannot be refunded: 6.00 RON is left."
    ]
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=session.payment_id).refunded_amount == Decimal("4.00")
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("6.00")
    assert not SessionAuditEntry.objects.filter(reason="Too much").exists()


def test_the_database_refuses_a_refund_above_what_was_captured(localstripe, parking, worker):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    payment = Payment.objects.get(pk=session.payment_id)

    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("10.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(
            payment=payment,
            amount=Decimal("0.00"),
            reason="Nothing",
            state=RefundState.PENDING,
            charge_reference=payment.hold_reference,
            created_at=timezone.now(),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(
            payment=payment,
            amount=Decimal("1.00"),
            reason="",
            state=RefundState.PENDING,
            charge_reference=payment.hold_reference,
            created_at=timezone.now(),
        )


def test_a_reason_is_required(localstripe, parking, worker, staff, operator):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)

    response = post_refund(staff, [session], amount="1.00", reason="  ")

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Refund.objects.exists()
    with pytest.raises(ValueError, match="reason"):
        refund_by_operator(
            session=session,
            actor=OperatorStaffFactory(operator=operator),
            amount=None,
            reason=" ",
            now=timezone.now(),
        )
    assert not Refund.objects.exists()


def test_an_amount_is_for_one_session_only(localstripe, parking, worker, staff):
    sessions = [captured_session(localstripe, parking, HOUR_AND_TEN) for _ in range(2)]

    response = post_refund(staff, sessions, amount="1.00", reason="Both")

    assert "An amount is for one session" in response.content.decode()
    assert not Refund.objects.exists()

    response = post_refund(staff, sessions, reason="Both in full")

    assert len(messages_of(response)) == 2
    assert set(ParkingSession.objects.values_list("amount", flat=True)) == {Decimal("0.00")}


def test_another_operators_staff_cannot_refund_and_staff_need_the_permission(
    localstripe, parking, worker
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    elsewhere = refunding_staff(OperatorFactory(name="Brasov Parking SRL"))
    not_allowed = refunding_staff(parking.operator, may_refund=False)

    post_refund(elsewhere, [session], reason="Not mine")
    assert elsewhere.get(change_url(session)).status_code == 404
    page = not_allowed.get(change_url(session)).content.decode()
    response = post_refund(not_allowed, [session], reason="Not allowed")

    assert "refund_sessions" not in not_allowed.get(changelist_url(ParkingSession)).content.decode()
    assert 'id="refund-session"' not in page
    assert "No action selected." in messages_of(response)
    assert not Refund.objects.exists()
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("10.00")


def test_the_session_page_has_a_refund_button_and_lists_the_refunds(
    localstripe, parking, worker, staff
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    post_refund(staff, [session], amount="3.00", reason="Lights were off")

    page = staff.get(change_url(session)).content.decode()

    refund = Refund.objects.get()
    assert 'id="refund-session"' in page
    assert "3.00 RON Refunded" in page
    assert refund.provider_reference in page
    assert "Lights were off" in page


def test_a_session_not_captured_yet_cannot_be_refunded(driver_client, localstripe, parking, staff):
    # No worker: the exit's capture job waits, and the payment stays "capturing".
    save_card(driver_client, localstripe)
    session_id = start_session(driver_client, parking).json()["parking_session"]["id"]
    act(driver_client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(start_time=timezone.now() - HOUR_AND_TEN)
    act(driver_client, session_id, "exit")
    act(driver_client, session_id, "finalize")
    session = ParkingSession.objects.get(pk=session_id)

    response = post_refund(staff, [session], reason="Too early")

    assert messages_of(response) == [
        f"Session #{session.pk}: Only a payment taken in full can be refunded; this one is "
        "Capturing."
    ]
    assert not Refund.objects.exists()


def test_a_stay_above_its_hold_is_refunded_from_both_charges(localstripe, operator, worker, staff):
    parking = SecuredParkingFactory(
        operator=operator, charges_by_card=True, hold_amount=Decimal("5.00")
    )
    # 15.00: 5.00 captured from the hold, 10.00 charged off-session above it.
    session = captured_session(localstripe, parking, timedelta(minutes=130))
    payment = session.payment
    assert payment.charges() == {
        payment.hold_reference: Decimal("5.00"),
        payment.extra_charge_reference: Decimal("10.00"),
    }

    response = post_refund(staff, [session], amount="12.00", reason="Wrong tariff")

    refunds = list(Refund.objects.order_by("pk"))
    assert [(r.charge_reference, r.amount, r.state) for r in refunds] == [
        (payment.extra_charge_reference, Decimal("10.00"), RefundState.SUCCEEDED),
        (payment.hold_reference, Decimal("2.00"), RefundState.SUCCEEDED),
    ]
    assert len(messages_of(response)) == 2
    extra = localstripe.latest_charge(payment.extra_charge_reference)
    assert extra["amount_refunded"] == 1000
    assert localstripe.latest_charge(payment.hold_reference)["amount_refunded"] == 200
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("3.00")
    call_command("reconcile_payments")

    post_refund(staff, [session], reason="The rest")

    assert localstripe.latest_charge(payment.hold_reference)["amount_refunded"] == 500
    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("15.00")
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("0.00")
    with pytest.raises(RefundExceedsRefundable):
        payments.refund(
            payment=payment, amount=None, reason="Again", actor=None, now=timezone.now()
        )
    call_command("reconcile_payments")


def test_a_refund_racing_the_capture_ends_in_an_outcome_the_invariant_allows(
    driver_client, localstripe, parking, operator
):
    """The capture job and a refund at once, on real threads: either the refund comes first
    and is refused (the payment is not taken yet), or it comes after and gives the money
    back. Never a refund of money not captured, never an amount that does not reconcile."""
    save_card(driver_client, localstripe)
    actor = OperatorStaffFactory(operator=operator)
    outcomes = []
    # The refund asked at once and a little later: the capture's calls to Stripe take tens
    # of milliseconds, so both outcomes come up.
    for delay in (0, 0.02, 0.05, 0.1, 0.5):
        session_id = start_session(driver_client, parking).json()["parking_session"]["id"]
        act(driver_client, session_id, "enter")
        ParkingSession.objects.filter(pk=session_id).update(
            start_time=timezone.now() - HOUR_AND_TEN
        )
        act(driver_client, session_id, "exit")
        act(driver_client, session_id, "finalize")
        session = ParkingSession.objects.get(pk=session_id)
        outcomes.append(_race(session, actor, delay))

        payment = Payment.objects.get(pk=session.payment_id)
        session.refresh_from_db()
        assert payment.state == PaymentState.CAPTURED
        assert outcomes[-1] in ("refused", "refunded")
        if outcomes[-1] == "refused":
            assert (payment.refunded_amount, session.amount) == (Decimal("0"), Decimal("10.00"))
        else:
            assert (payment.refunded_amount, session.amount) == (Decimal("10.00"), Decimal("0"))
    call_command("reconcile_payments")


def _race(session: ParkingSession, actor, delay: float) -> str:
    start = threading.Barrier(2)
    outcome: list[str] = []

    def capture() -> None:
        try:
            start.wait()
            payments.capture(payment_id=session.payment_id, now=timezone.now())
        finally:
            connection.close()

    def refund() -> None:
        try:
            start.wait()
            time.sleep(delay)
            refund_by_operator(
                session=session, actor=actor, amount=None, reason="Race", now=timezone.now()
            )
            outcome.append("refunded")
        except PaymentNotCaptured:
            outcome.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=capture), threading.Thread(target=refund)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcome[0] if outcome else "no outcome"


def test_reconcile_is_clean_after_refunds_and_reports_a_tampered_row(
    localstripe, parking, worker, staff
):
    session = captured_session(localstripe, parking, HOUR_AND_TEN)
    post_refund(staff, [session], amount="4.00", reason="Partial")
    call_command("reconcile_payments")

    ParkingSession.objects.filter(pk=session.pk).update(amount=Decimal("10.00"))
    with pytest.raises(CommandError, match="1 difference"):
        call_command("reconcile_payments")

    ParkingSession.objects.filter(pk=session.pk).update(amount=Decimal("6.00"))
    Refund.objects.update(amount=Decimal("3.00"))
    with pytest.raises(CommandError) as reported:
        call_command("reconcile_payments")
    # The refund's own figure against the payment's and against Stripe's.
    assert "2 difference" in str(reported.value)


def test_a_refund_stripe_did_not_answer_stays_pending_and_the_job_makes_it(
    own_localstripe, parking, job_worker, staff, settings
):
    job_worker(env={"STRIPE_API_BASE": own_localstripe.url})
    session = captured_session(own_localstripe, parking, HOUR_AND_TEN)
    own_localstripe.stop()
    try:
        response = post_refund(staff, [session], amount="3.00", reason="Overcharged")
    finally:
        own_localstripe.start()

    assert "did not answer" in messages_of(response)[0]
    refund = Refund.objects.get()
    assert refund.state == RefundState.PENDING
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("10.00")
    # The job deferred with the refund, due a minute later: made due now.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = %s",
            ["payments.send_refund"],
        )
    wait_until(
        lambda: Refund.objects.get().state == RefundState.SUCCEEDED, what="refund made", timeout=40
    )
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("7.00")
    assert (
        own_localstripe.latest_charge(session.payment.hold_reference)["refunds"]["total_count"] == 2
    )
    call_command("reconcile_payments")
