"""Refunds made in Stripe's dashboard, heard of by the ``charge.refunded`` webhook (signed with
the SDK's own scheme: localstripe does not sign) and applied by a real worker: each refund is
recorded once, whatever the replays and the order the events come in, and the session's
amount follows; a refund of ours that Stripe made without our hearing it is completed, not
doubled."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from parking.models import ParkingSession
from parking.services.back_office import refund_by_operator
from payments.models import Payment, ProviderEvent, Refund, RefundState
from tests.factories import OperatorStaffFactory, SecuredParkingFactory
from tests.jobs import wait_until
from tests.payments import SECRET_KEY, refund_at_stripe
from tests.refunds import captured_session
from tests.test_stripe_webhooks import event, send

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_test_secret"
STAY = timedelta(minutes=70)  # 10.00


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def parking(db):
    return SecuredParkingFactory(charges_by_card=True)


def charge_refunded(charge: dict, event_id: str, created: int) -> str:
    return event(event_id, "charge.refunded", created, charge)


def applied(count: int) -> None:
    wait_until(
        lambda: ProviderEvent.objects.filter(processed_at__isnull=False).count() == count,
        what=f"{count} events applied",
    )


def test_dashboard_refunds_are_recorded_once_whatever_the_replays_and_the_order(
    client, localstripe, job_worker, parking
):
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = captured_session(localstripe, parking, STAY)
    intent = session.payment.hold_reference
    first = refund_at_stripe(localstripe, intent, 300)
    charge_after_first = localstripe.latest_charge(intent)
    second = refund_at_stripe(localstripe, intent, 200)
    charge_after_second = localstripe.latest_charge(intent)
    now = int(time.time())

    # The second refund's event first, then the first's, each twice, and another kind.
    newer = charge_refunded(charge_after_second, "evt_r2", now)
    older = charge_refunded(charge_after_first, "evt_r1", now - 30)
    for payload in (newer, older, newer, older):
        assert send(client, payload).status_code == 200
    send(client, event("evt_r3", "charge.refund.updated", now, {**first, "object": "refund"}))
    applied(3)

    refunds = Refund.objects.order_by("refunded_at", "pk")
    assert sorted(refunds.values_list("provider_reference", "amount")) == sorted(
        [(first["id"], Decimal("3.00")), (second["id"], Decimal("2.00"))]
    )
    assert all(refund.actor is None and refund.reason for refund in refunds)
    assert set(refunds.values_list("state", flat=True)) == {RefundState.SUCCEEDED}
    payment = Payment.objects.get(pk=session.payment_id)
    assert payment.refunded_amount == Decimal("5.00")
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("5.00")
    assert payment.events.filter(kind="refunded").count() == 2
    call_command("reconcile_payments")


def test_the_webhook_of_a_back_office_refund_records_nothing_more(
    client, localstripe, job_worker, parking
):
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = captured_session(localstripe, parking, STAY)
    refund_by_operator(
        session=session,
        actor=OperatorStaffFactory(operator=parking.operator),
        amount=Decimal("4.00"),
        reason="Overcharged",
        now=timezone.now(),
    )
    charge = localstripe.latest_charge(session.payment.hold_reference)

    send(client, charge_refunded(charge, "evt_ours", int(time.time())))
    applied(1)

    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=session.payment_id).refunded_amount == Decimal("4.00")
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("6.00")


def test_a_refund_stripe_made_without_our_hearing_it_is_completed_by_the_webhook(
    client, own_localstripe, job_worker, parking
):
    job_worker(env={"STRIPE_API_BASE": own_localstripe.url})
    session = captured_session(own_localstripe, parking, STAY)
    intent = session.payment.hold_reference
    own_localstripe.stop()
    try:
        refund_by_operator(
            session=session,
            actor=OperatorStaffFactory(operator=parking.operator),
            amount=Decimal("2.00"),
            reason="Overcharged",
            now=timezone.now(),
        )
    finally:
        own_localstripe.start()
    pending = Refund.objects.get()
    assert pending.state == RefundState.PENDING
    # As if the request had reached Stripe and only its answer was lost.
    made = requests.post(
        f"{own_localstripe.url}/v1/refunds",
        data={
            "payment_intent": intent,
            "amount": "200",
            "metadata[idempotency_key]": pending.idempotency_key,
        },
        auth=(SECRET_KEY, ""),
        timeout=5,
    ).json()

    send(
        client, charge_refunded(own_localstripe.latest_charge(intent), "evt_lost", int(time.time()))
    )
    applied(1)

    refund = Refund.objects.get()
    assert (refund.pk, refund.state, refund.provider_reference) == (
        pending.pk,
        RefundState.SUCCEEDED,
        made["id"],
    )
    assert ParkingSession.objects.get(pk=session.pk).amount == Decimal("8.00")
    call_command("reconcile_payments")
