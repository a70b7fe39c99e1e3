"""The payments app's background jobs (core.jobs; README, "Background jobs"). Each runs under
a lock per payment and finds its work done when run again (services' conditional updates,
provider calls under the payment's idempotency keys)."""

from typing import Any

from django.utils import timezone
from procrastinate.contrib.django import app

from core.jobs import BACKOFF
from payments import services


@app.task(name="payments.capture", retry=BACKOFF)
def capture_payment(*, payment_id: int) -> None:
    services.capture(payment_id=payment_id, now=timezone.now())


@app.task(name="payments.release", retry=BACKOFF)
def release_hold(*, payment_id: int) -> None:
    services.release(payment_id=payment_id, now=timezone.now())


@app.task(name="payments.release_unknown_hold", retry=BACKOFF)
def release_unknown_hold(*, payment_id: int) -> None:
    services.release_unknown_hold(payment_id=payment_id, now=timezone.now())


@app.task(name="payments.apply_event", retry=BACKOFF)
def apply_provider_event(*, event_pk: int) -> None:
    services.apply_event(event_pk=event_pk, now=timezone.now())


@app.task(name="payments.send_refund", retry=BACKOFF)
def send_refund(*, refund_id: int) -> None:
    services.send_refund(refund_id=refund_id, now=timezone.now())


@app.task(name="payments.delete_customer", retry=BACKOFF)
def delete_provider_customer(*, customer: str) -> None:
    services.delete_customer(customer=customer)


@app.periodic(cron="*/5 * * * *")
@app.task(name="payments.sweep", queueing_lock="payments.sweep", lock="payments.sweep")
def sweep_payments(timestamp: int) -> None:
    """Orphan holds released, stuck captures and refunds retried, holds near expiry renewed."""
    now = timezone.now()
    services.release_orphan_holds(now=now)
    services.retry_captures(now=now)
    services.retry_refunds(now=now)
    services.renew_holds(now=now)


BY_NAME: dict[str, Any] = {
    task.name: task
    for task in (
        capture_payment,
        release_hold,
        release_unknown_hold,
        apply_provider_event,
        send_refund,
        delete_provider_customer,
    )
}
