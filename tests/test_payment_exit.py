"""After the stay: exit fixes the amount and a job worker captures it from the hold (and
charges above it off-session); cancel releases the hold; a refused card leaves a debt the
driver settles before the next start; Stripe down at exit does not keep the car in."""

import socket
import threading
import time
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
import requests
from django.utils import timezone

from parking.models import ParkingSession, State
from payments.models import Card, Payment, PaymentState, ProviderCustomer
from tests.api import (
    DriverClient,
    act,
    error_body,
    error_code,
    json_body,
    session_action,
    session_url,
    start_session,
)
from tests.factories import (
    AccessTokenFactory,
    DriverFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
)
from tests.jobs import wait_until
from tests.payments import parked_for, save_card, wait_for_state
from tests.threads import bearer_client, fire_together, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def parking(db):
    return SecuredParkingFactory(charges_by_card=True)


def test_exit_captures_the_amount_and_releases_the_rest_of_the_hold(
    driver_client, localstripe, parking, job_worker
):
    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = parked_for(driver_client, parking, timedelta(minutes=70))

    body = act(driver_client, session.pk, "exit")
    assert body["amount"] == "10.00"
    act(driver_client, session.pk, "finalize")

    payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)
    assert (payment.amount, payment.captured_amount) == (Decimal("10.00"), Decimal("10.00"))
    intent = localstripe.payment_intent(payment.hold_reference)
    assert intent["status"] == "succeeded"
    charge = localstripe.latest_charge(payment.hold_reference)
    # localstripe shows the released rest of a partial capture as refunded, as Stripe did.
    assert (charge["amount"], charge["amount_refunded"]) == (4000, 3000)
    history = json_body(driver_client.get(session_url(session.pk, "payment")), 200)
    assert history["state"] == "captured"
    assert [event["kind"] for event in history["history"]] == [
        "hold_placed",
        "amount_fixed",
        "captured",
    ]


def test_above_the_hold_the_hold_is_captured_and_the_rest_charged_off_session(
    driver_client, localstripe, job_worker
):
    parking = SecuredParkingFactory(charges_by_card=True, hold_amount=Decimal("5.00"))
    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = parked_for(driver_client, parking, timedelta(minutes=130))

    assert act(driver_client, session.pk, "exit")["amount"] == "15.00"

    payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)
    assert payment.captured_amount == Decimal("15.00")
    assert localstripe.payment_intent(payment.hold_reference)["status"] == "succeeded"
    extra = localstripe.payment_intent(payment.extra_charge_reference)
    assert (extra["status"], extra["amount"]) == ("succeeded", 1000)


def test_a_free_stay_releases_the_hold(driver_client, localstripe, parking, job_worker):
    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = parked_for(driver_client, parking, timedelta(minutes=5))

    assert act(driver_client, session.pk, "exit")["amount"] == "0.00"

    payment = wait_for_state(session.payment_id, PaymentState.RELEASED)
    assert localstripe.payment_intent(payment.hold_reference)["status"] == "canceled"


def test_cancel_releases_the_hold(driver_client, localstripe, parking, job_worker):
    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    body = json_body(start_session(driver_client, parking), 201)

    act(driver_client, body["parking_session"]["id"], "cancel")

    session = ParkingSession.objects.get(pk=body["parking_session"]["id"])
    payment = wait_for_state(session.payment_id, PaymentState.RELEASED)
    assert localstripe.payment_intent(payment.hold_reference)["status"] == "canceled"


def test_a_stale_entering_session_releases_its_hold(
    driver_client, localstripe, parking, job_worker, settings
):
    from parking.tasks import clean_up_parking

    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    body = json_body(start_session(driver_client, parking), 201)
    session_id = body["parking_session"]["id"]
    ParkingSession.objects.filter(pk=session_id).update(
        start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1)
    )

    assert clean_up_parking(now=timezone.now()).cancelled_sessions == 1

    payment = wait_for_state(
        ParkingSession.objects.get(pk=session_id).payment_id, PaymentState.RELEASED
    )
    assert localstripe.payment_intent(payment.hold_reference)["status"] == "canceled"


def test_a_refused_charge_leaves_a_debt_that_blocks_the_next_start_until_paid(
    driver_client, localstripe, job_worker
):
    parking = SecuredParkingFactory(charges_by_card=True, hold_amount=Decimal("5.00"))
    card = save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = parked_for(driver_client, parking, timedelta(minutes=130))
    # The card is gone at Stripe by exit time: the charge above the hold is refused.
    assert driver_client.delete(f"/api/car_driver/payment_methods/{card['id']}").status_code == 204

    act(driver_client, session.pk, "exit")
    payment = wait_for_state(session.payment_id, PaymentState.OUTSTANDING)
    assert (payment.captured_amount, payment.outstanding_amount) == (
        Decimal("5.00"),
        Decimal("10.00"),
    )
    # The car still gets out.
    assert act(driver_client, session.pk, "finalize")["parking_session"]["state"] == "finished"

    refused = start_session(driver_client, parking)
    assert refused.status_code == 402
    assert error_code(refused) == "outstanding_balance"
    assert error_body(refused)["parking_session_id"] == session.pk

    save_card(driver_client, localstripe)
    paid = json_body(session_action(driver_client, session.pk, "pay"), 200)
    assert (paid["state"], paid["captured_amount"], paid["outstanding_amount"]) == (
        "captured",
        "15.00",
        "0.00",
    )
    assert session_action(driver_client, session.pk, "pay").status_code == 409
    assert start_session(driver_client, parking).status_code == 201


def test_stripe_down_at_exit_lets_the_car_out_and_the_worker_captures_when_it_is_back(
    driver_client, own_localstripe, parking, job_worker
):
    save_card(driver_client, own_localstripe)
    session = parked_for(driver_client, parking, timedelta(minutes=70))
    own_localstripe.stop()
    job_worker(env={"STRIPE_API_BASE": own_localstripe.url})

    act(driver_client, session.pk, "exit")
    assert act(driver_client, session.pk, "finalize")["parking_session"]["state"] == "finished"
    payment = Payment.objects.get(pk=session.payment_id)
    assert (payment.state, payment.outstanding_amount) == (PaymentState.CAPTURING, Decimal("10.00"))

    own_localstripe.start()
    payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)
    assert payment.captured_amount == Decimal("10.00")
    assert own_localstripe.payment_intent(payment.hold_reference)["status"] == "succeeded"


def test_a_double_tap_on_exit_captures_once(driver_client, localstripe, parking, job_worker):
    save_card(driver_client, localstripe)
    session = parked_for(driver_client, parking, timedelta(minutes=70))
    token = AccessTokenFactory(user=driver_client.driver)
    clients = [bearer_client(token) for _ in range(2)]

    answers = fire_together(
        [partial(session_action, client, session.pk, "exit") for client in clients]
    )

    assert statuses(answers) == {200: 1, 409: 1}
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)
    assert payment.events.filter(kind="captured").count() == 1
    assert localstripe.latest_charge(payment.hold_reference)["amount_refunded"] == 3000


def test_a_card_removed_does_not_stop_a_session_in_progress(driver_client, localstripe, parking):
    save_card(driver_client, localstripe)
    session = parked_for(driver_client, parking, timedelta(minutes=70))

    Card.objects.all().delete()

    assert act(driver_client, session.pk, "exit")["parking_session"]["state"] == State.EXITING


class StallingProxy:
    """A loopback proxy to localstripe that forwards every request at once but holds back the
    answer to a capture: Stripe has captured, the worker has not heard it yet."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.captures = threading.Event()
        self.stopping = threading.Event()
        self.server = threading.Thread(target=self._serve, daemon=True)
        self.server.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        # Both ways as streams: a request or an answer can come in several pieces (headers,
        # then body), and the capture's request must reach Stripe whole.
        with client, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            holding_back = threading.Event()
            answers = threading.Thread(
                target=self._answer, args=(upstream, client, holding_back), daemon=True
            )
            answers.start()
            client.settimeout(5)
            while not self.stopping.is_set():
                try:
                    request = client.recv(65536)
                except TimeoutError:
                    if holding_back.is_set():
                        continue  # the worker waits for its answer until it is killed
                    return
                except OSError:
                    return
                if not request:
                    return
                if b"/capture" in request.split(b"\r\n", 1)[0]:
                    holding_back.set()
                upstream.sendall(request)

    def _answer(
        self, upstream: socket.socket, client: socket.socket, holding_back: threading.Event
    ) -> None:
        # The client asks again only once it has a whole answer, so everything before the
        # capture's answer has gone through when holding back starts.
        while True:
            try:
                answer = upstream.recv(65536)
            except OSError:
                return
            if not answer:
                return
            if holding_back.is_set():
                self.captures.set()  # Stripe has captured and said so; the worker never hears
                return
            client.sendall(answer)

    def close(self) -> None:
        self.stopping.set()
        self.server.join()
        self.listener.close()


def test_a_worker_killed_mid_capture_runs_it_again_and_captures_once(
    driver_client, localstripe, parking, job_worker
):
    import core.jobs
    from tests.jobs import defer_periodic_now, statuses

    save_card(driver_client, localstripe)
    session = parked_for(driver_client, parking, timedelta(minutes=70))
    proxy = StallingProxy(localstripe.port)
    fast = {"JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_STALLED_AFTER_SECONDS": "2"}
    try:
        first = job_worker(
            env={**fast, "STRIPE_API_BASE": proxy.url, "STRIPE_TIMEOUT_SECONDS": "60"}
        )
        act(driver_client, session.pk, "exit")
        assert proxy.captures.wait(30)
        first.kill()
    finally:
        proxy.close()
    assert Payment.objects.get(pk=session.payment_id).state == PaymentState.CAPTURING
    assert localstripe.payment_intent(session.payment.hold_reference)["status"] == "succeeded"

    time.sleep(2.5)
    defer_periodic_now(core.jobs.retry_stalled_jobs)
    job_worker(env={**fast, "STRIPE_API_BASE": localstripe.url})

    payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)
    assert payment.captured_amount == Decimal("10.00")
    assert payment.events.filter(kind="captured").count() == 1
    assert statuses("payments.capture") == ["succeeded"]
    assert localstripe.latest_charge(payment.hold_reference)["amount_refunded"] == 3000


def test_reconcile_payments_finds_no_difference_after_captures_and_reports_each_one(
    driver_client, localstripe, parking, job_worker, settings
):
    from django.core.management import CommandError, call_command

    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    session = parked_for(driver_client, parking, timedelta(minutes=70))
    act(driver_client, session.pk, "exit")
    act(driver_client, session.pk, "finalize")
    wait_for_state(session.payment_id, PaymentState.CAPTURED)
    call_command("reconcile_payments")

    # A hold released at Stripe behind the backend's back is reported.
    other = DriverClient(DriverFactory())
    save_card(other, localstripe)
    started = json_body(start_session(other, parking), 201)
    hold = ParkingSession.objects.get(pk=started["parking_session"]["id"]).payment.hold_reference
    requests.post(
        f"{localstripe.url}/v1/payment_intents/{hold}/cancel",
        auth=("sk_test_localstripe", ""),
        timeout=5,
    ).raise_for_status()

    with pytest.raises(CommandError, match="1 difference"):
        call_command("reconcile_payments")


def test_a_hold_about_to_expire_during_a_long_stay_is_renewed_in_the_background(
    driver_client, localstripe, parking, job_worker, settings
):
    from payments.tasks import sweep_payments
    from tests.jobs import defer_periodic_now

    save_card(driver_client, localstripe)
    session = parked_for(driver_client, parking, timedelta(days=6, hours=1))
    old = Payment.objects.get(pk=session.payment_id)
    Payment.objects.filter(pk=old.pk).update(
        hold_placed_at=timezone.now() - settings.PAYMENT_HOLD_RENEW_AFTER - timedelta(minutes=1)
    )
    job_worker(env={"STRIPE_API_BASE": localstripe.url})

    defer_periodic_now(sweep_payments)

    wait_until(
        lambda: Payment.objects.get(pk=old.pk).hold_reference != old.hold_reference,
        what="the renewed hold",
    )
    renewed = Payment.objects.get(pk=old.pk)
    assert renewed.state == PaymentState.AUTHORIZED
    assert localstripe.payment_intent(renewed.hold_reference)["status"] == "requires_capture"
    assert localstripe.payment_intent(old.hold_reference)["status"] == "canceled"
    assert renewed.events.filter(kind="hold_placed", detail="renewed").count() == 1


class TestDeletingAnAccountThatPaid:
    """The payments stay as accounting records; money still moving or owed comes first."""

    def delete(self, client):
        return client.delete(
            "/api/car_driver/account", {"password": "correct-horse-battery"}, format="json"
        )

    def test_a_paid_stay_keeps_its_payment_and_the_stripe_customer_goes(
        self, driver_client, localstripe, parking, job_worker
    ):
        save_card(driver_client, localstripe)
        customer = ProviderCustomer.objects.get(driver=driver_client.driver).reference
        job_worker(env={"STRIPE_API_BASE": localstripe.url})
        session = parked_for(driver_client, parking, timedelta(minutes=70))
        act(driver_client, session.pk, "exit")
        act(driver_client, session.pk, "finalize")
        payment = wait_for_state(session.payment_id, PaymentState.CAPTURED)

        assert self.delete(driver_client).status_code == 204

        payment.refresh_from_db()
        assert (payment.driver_id, payment.captured_amount) == (None, Decimal("10.00"))
        assert not Card.objects.exists()
        wait_until(
            lambda: not localstripe.exists(f"/v1/customers/{customer}"),
            what="the Stripe Customer deleted",
        )

    def test_a_capture_still_running_refuses_with_409_payment_in_progress(
        self, driver_client, own_localstripe, parking
    ):
        save_card(driver_client, own_localstripe)
        session = parked_for(driver_client, parking, timedelta(minutes=70))
        own_localstripe.stop()
        act(driver_client, session.pk, "exit")
        act(driver_client, session.pk, "finalize")

        refused = self.delete(driver_client)

        assert refused.status_code == 409
        assert error_code(refused) == "payment_in_progress"
        assert Payment.objects.get(pk=session.payment_id).driver_id == driver_client.driver.pk

    def test_a_debt_refuses_with_402_outstanding_balance(self, driver_client):
        payment = Payment.objects.create(
            driver=driver_client.driver,
            provider="stripe",
            idempotency_key="debt",
            state=PaymentState.OUTSTANDING,
            currency="RON",
            hold_amount=Decimal("5.00"),
            amount=Decimal("15.00"),
            captured_amount=Decimal("5.00"),
            outstanding_since=timezone.now(),
            created_at=timezone.now(),
            updated_at=timezone.now(),
        )
        session = ParkingSessionFactory(
            driver=driver_client.driver, state=State.FINISHED, payment=payment
        )

        refused = self.delete(driver_client)

        assert refused.status_code == 402
        assert error_code(refused) == "outstanding_balance"
        assert error_body(refused)["parking_session_id"] == session.pk
