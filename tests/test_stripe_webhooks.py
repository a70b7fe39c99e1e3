"""POST /webhooks/stripe: events signed with the endpoint secret by the SDK's own scheme
(localstripe does not sign them), recorded once per event id and applied by a real worker in
any order; disputes flag the payment."""

import json
import time
from decimal import Decimal

import pytest
import stripe
from django.utils import timezone

from payments.models import Payment, PaymentState, ProviderEvent
from tests.factories import DriverFactory
from tests.jobs import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/webhooks/stripe"
SECRET = "whsec_test_secret"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def payment(db):
    now = timezone.now()
    return Payment.objects.create(
        driver=DriverFactory(),
        provider="stripe",
        idempotency_key="k",
        state=PaymentState.CAPTURED,
        currency="RON",
        hold_amount=Decimal("40.00"),
        hold_reference="pi_disputed",
        amount=Decimal("10.00"),
        captured_amount=Decimal("10.00"),
        created_at=now,
        updated_at=now,
    )


def event(event_id: str, type_: str, created: int, obj: dict) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": type_,
            "created": created,
            "data": {"object": obj},
        }
    )


def dispute(status: str) -> dict:
    return {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": "pi_disputed",
        "status": status,
        "amount": 1000,
    }


def send(client, payload: str, secret: str = SECRET):
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return client.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def test_a_dispute_flags_the_payment(client, payment, job_worker):
    job_worker()
    now = int(time.time())

    response = send(
        client, event("evt_1", "charge.dispute.created", now, dispute("needs_response"))
    )

    assert response.status_code == 200
    wait_until(lambda: Payment.objects.get(pk=payment.pk).disputed_at is not None, what="flag")
    assert Payment.objects.get(pk=payment.pk).dispute_status == "needs_response"
    assert payment.events.filter(kind="provider_event", reference="evt_1").count() == 1


def test_a_replayed_event_is_acknowledged_and_applied_once(client, payment, job_worker):
    payload = event("evt_2", "charge.dispute.created", int(time.time()), dispute("needs_response"))

    first, replay = send(client, payload), send(client, payload)

    assert first.json() == {"received": True, "duplicate": False}
    assert replay.json() == {"received": True, "duplicate": True}
    job_worker()
    wait_until(lambda: ProviderEvent.objects.get(event_id="evt_2").processed_at, what="applied")
    assert payment.events.filter(reference="evt_2").count() == 1


def test_events_out_of_order_leave_the_latest_status(client, payment, job_worker):
    now = int(time.time())
    # The dispute was lost (later event) but the "created" event arrives after it.
    send(client, event("evt_4", "charge.dispute.closed", now, dispute("lost")))
    send(client, event("evt_3", "charge.dispute.created", now - 60, dispute("needs_response")))
    job_worker()

    wait_until(
        lambda: ProviderEvent.objects.filter(processed_at__isnull=False).count() == 2,
        what="both applied",
    )
    flagged = Payment.objects.get(pk=payment.pk)
    assert flagged.dispute_status == "lost"
    assert int(flagged.disputed_at.timestamp()) == now - 60


def test_a_bad_signature_is_refused_and_recorded_nowhere(client, payment):
    payload = event("evt_5", "charge.dispute.created", int(time.time()), dispute("lost"))

    response = send(client, payload, secret="whsec_someone_else")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_signature"
    assert not ProviderEvent.objects.exists()


def test_an_unsigned_event_is_refused(client):
    response = client.post(URL, "{}", content_type="application/json")

    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_an_event_about_no_payment_of_ours_is_recorded_and_ignored(client, job_worker):
    send(
        client,
        event(
            "evt_6",
            "payment_intent.succeeded",
            int(time.time()),
            {"id": "pi_elsewhere", "object": "payment_intent"},
        ),
    )
    job_worker()

    wait_until(lambda: ProviderEvent.objects.get(event_id="evt_6").processed_at, what="applied")
