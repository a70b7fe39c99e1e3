"""A start at a parking that charges by card places a hold on the default card (a manual-
capture PaymentIntent at localstripe) before the session exists; every way it can fail
leaves no session and no hold."""

import socket
import threading
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest

from parking.models import ParkingSession
from payments.models import Payment, PaymentState
from tests.api import error_body, error_code, json_body, start_session
from tests.factories import AccessTokenFactory, SecuredParkingFactory
from tests.payments import CARD_3DS, CARD_DECLINED_ON_CHARGE, CARD_OK, save_card
from tests.threads import bearer_client, fire_together, statuses
from tests.tools import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def parking(db):
    return SecuredParkingFactory(charges_by_card=True)


def holds_of(stripe, driver) -> list[dict]:
    references = set(Payment.objects.filter(driver=driver).values_list("hold_reference", flat=True))
    return [intent for intent in stripe.payment_intents() if intent["id"] in references]


def test_a_start_holds_the_daily_cap_on_the_default_card(driver_client, localstripe, parking):
    save_card(driver_client, localstripe)

    body = json_body(start_session(driver_client, parking), 201)

    session = ParkingSession.objects.get(pk=body["parking_session"]["id"])
    payment = session.payment
    assert payment.state == PaymentState.AUTHORIZED
    assert payment.hold_amount == Decimal("40.00")
    intent = localstripe.payment_intent(payment.hold_reference)
    assert (intent["status"], intent["amount"], intent["currency"]) == (
        "requires_capture",
        4000,
        "ron",
    )
    assert intent["capture_method"] == "manual"
    assert intent["payment_method"] == payment.card.reference


def test_a_parking_can_set_its_own_hold(driver_client, localstripe):
    parking = SecuredParkingFactory(charges_by_card=True, hold_amount=Decimal("12.50"))
    save_card(driver_client, localstripe)

    body = json_body(start_session(driver_client, parking), 201)

    payment = ParkingSession.objects.get(pk=body["parking_session"]["id"]).payment
    assert localstripe.payment_intent(payment.hold_reference)["amount"] == 1250


def test_the_session_body_is_the_same_with_a_hold(driver_client, localstripe, parking):
    save_card(driver_client, localstripe)

    body = json_body(start_session(driver_client, parking), 201)

    assert set(body) == {"amount", "currency", "parking_session", "smart_key"}


def test_without_a_card_the_start_answers_402_payment_method_required(driver_client, parking):
    response = start_session(driver_client, parking)

    assert response.status_code == 402
    assert error_code(response) == "payment_method_required"
    assert not ParkingSession.objects.exists()
    assert not Payment.objects.exists()


def test_a_declined_hold_answers_402_and_starts_nothing(driver_client, localstripe, parking):
    save_card(driver_client, localstripe, CARD_DECLINED_ON_CHARGE)

    response = start_session(driver_client, parking)

    assert response.status_code == 402
    body = error_body(response)
    assert body["errors"][0]["code"] == "payment_declined"
    assert body["decline_code"] == "card_declined"
    assert not ParkingSession.objects.exists()
    assert holds_of(localstripe, driver_client.driver) == []


def test_3d_secure_answers_402_with_the_client_secret_and_the_retry_with_the_key_starts(
    driver_client, localstripe, parking
):
    save_card(driver_client, localstripe, CARD_3DS)

    first = start_session(driver_client, parking, idempotency_key="start-3ds-1")

    assert first.status_code == 402
    body = error_body(first)
    assert body["errors"][0]["code"] == "payment_requires_action"
    assert not ParkingSession.objects.exists()
    localstripe.authenticate(body["client_secret"])

    retry = json_body(start_session(driver_client, parking, idempotency_key="start-3ds-1"), 201)

    session = ParkingSession.objects.get(pk=retry["parking_session"]["id"])
    assert session.payment.hold_reference == body["client_secret"].split("_secret_")[0]
    holds = holds_of(localstripe, driver_client.driver)
    assert [hold["status"] for hold in holds] == ["requires_capture"]


def test_3d_secure_not_completed_yet_answers_402_again(driver_client, localstripe, parking):
    save_card(driver_client, localstripe, CARD_3DS)
    start_session(driver_client, parking, idempotency_key="start-3ds-2")

    retry = start_session(driver_client, parking, idempotency_key="start-3ds-2")

    assert retry.status_code == 402
    assert error_code(retry) == "payment_requires_action"
    assert len(holds_of(localstripe, driver_client.driver)) == 1


def test_stripe_stopped_at_start_answers_503_with_no_session_and_no_hold(
    driver_client, own_localstripe, parking
):
    save_card(driver_client, own_localstripe)
    own_localstripe.stop()

    response = start_session(driver_client, parking)

    assert response.status_code == 503
    assert error_code(response) == "payment_provider_unavailable"
    assert not ParkingSession.objects.exists()
    own_localstripe.start()
    assert own_localstripe.payment_intents() == []


@pytest.fixture
def silent_stripe(settings):
    """A server that accepts connections and never answers: Stripe too slow."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_slow_stripe_answers_503_within_the_timeout(
    driver_client, localstripe, parking, settings, silent_stripe
):
    save_card(driver_client, localstripe)
    settings.STRIPE_API_BASE = silent_stripe
    settings.STRIPE_TIMEOUT_SECONDS = 1

    response = start_session(driver_client, parking)

    assert response.status_code == 503
    assert error_code(response) == "payment_provider_unavailable"
    assert not ParkingSession.objects.exists()
    assert Payment.objects.get().state == PaymentState.UNAVAILABLE


@pytest.mark.postgres
def test_a_start_refused_after_the_hold_releases_it(driver_client, localstripe, job_worker):
    parking = SecuredParkingFactory(charges_by_card=True, capacity=0)
    save_card(driver_client, localstripe)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})

    response = start_session(driver_client, parking)

    assert response.status_code == 409
    payment = Payment.objects.get()
    wait_for_state(payment, PaymentState.RELEASED)
    assert localstripe.payment_intent(payment.hold_reference)["status"] == "canceled"


def wait_for_state(payment, state, timeout=30):
    from tests.jobs import wait_until

    wait_until(
        lambda: Payment.objects.get(pk=payment.pk).state == state,
        what=f"payment {payment.pk} {state}",
        timeout=timeout,
    )


def test_a_parking_that_does_not_charge_by_card_starts_without_a_card(driver_client):
    parking = SecuredParkingFactory(charges_by_card=False)

    body = json_body(start_session(driver_client, parking), 201)

    assert ParkingSession.objects.get(pk=body["parking_session"]["id"]).payment is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_32_parallel_starts_with_one_idempotency_key_place_one_hold(localstripe, driver):
    token = AccessTokenFactory(user=driver)
    clients = [bearer_client(token) for _ in range(32)]
    save_card(clients[0], localstripe, CARD_OK)
    parking = SecuredParkingFactory(charges_by_card=True)

    answers = fire_together(
        [partial(start_session, client, parking, idempotency_key="one-key") for client in clients]
    )

    assert statuses(answers) == {201: 32}
    session = ParkingSession.objects.get(driver=driver)
    assert {answer.body["parking_session"]["id"] for answer in answers} == {session.pk}
    assert Payment.objects.filter(driver=driver).count() == 1
    assert len(holds_of(localstripe, driver)) == 1


@pytest.mark.postgres
def test_current_of_a_paid_session_at_its_agreed_tariff_costs_two_queries(
    driver_client, localstripe, parking, django_assert_num_queries
):
    from django.utils import timezone

    from parking.models import Tariff
    from tests.api import CURRENT_URL, act

    save_card(driver_client, localstripe)
    body = json_body(start_session(driver_client, parking), 201)
    act(driver_client, body["parking_session"]["id"], "enter")
    ParkingSession.objects.filter(pk=body["parking_session"]["id"]).update(
        start_time=timezone.now() - timedelta(minutes=70)
    )
    Tariff.objects.filter(secured_parking=parking).update(price_per_period=Decimal("6.00"))

    # 1: the token with its user; 2: the session with its parking, terms, key and barriers.
    with django_assert_num_queries(2):
        current = json_body(driver_client.get(CURRENT_URL), 200)

    assert current["amount"] == "10.00"
    assert set(current) == {"amount", "currency", "parking_session", "smart_key"}
