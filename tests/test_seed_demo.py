import re
import subprocess
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from accounts.models import User
from parking.models import (
    OPEN_STATES,
    Operator,
    OperatorMembership,
    ParkingSession,
    SecuredParking,
    State,
    Tariff,
)
from payments.demo import CARD_OK, confirm_card_setup
from payments.models import Card, Payment, PaymentState, ProviderCustomer
from smart_keys.models import AccessPoint, Direction, SmartKey
from tests.api import CURRENT_URL, act
from tests.factories import AccessTokenFactory, ParkingSessionFactory, SecuredParkingFactory
from tests.payments import wait_for_state

CURL_TOKEN = re.compile(
    r"curl -H 'Authorization: Bearer ([\w-]+)' " + re.escape(f"http://127.0.0.1:8000{CURRENT_URL}")
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def stripe(localstripe):
    """Seeding saves the demo card and places the open session's hold at Stripe."""
    return localstripe


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = [
        Operator,
        OperatorMembership,
        SecuredParking,
        Tariff,
        AccessPoint,
        Application,
        User,
        ParkingSession,
        SmartKey,
        ProviderCustomer,
        Card,
        Payment,
    ]
    return {model.__name__: model.objects.count() for model in models}


def open_sessions_of(email: str):
    return ParkingSession.objects.filter(driver__email=email, state__in=OPEN_STATES)


def open_session_of(email: str) -> ParkingSession:
    return open_sessions_of(email).get()


def token_from(output: str) -> str:
    match = CURL_TOKEN.search(output)
    assert match, output
    return match.group(1)


def test_seeding_creates_the_parking_with_its_barriers(debug):
    seed()

    parking = SecuredParking.objects.get(name="Secured P 1")
    assert parking.currency == "RON"
    assert parking.description
    assert parking.address.endswith("Romania")
    assert parking.latitude is not None and parking.longitude is not None
    directions = {ap.mac_address: ap.direction for ap in parking.access_points.all()}
    assert directions["76:86:BB:DE:63:AD"] == Direction.ENTRANCE
    assert sorted(directions.values()) == [Direction.ENTRANCE, Direction.ENTRANCE, Direction.EXIT]
    assert parking.tariff.summary == (
        "First 15 min free, then 5.00 RON per started hour, at most 40.00 RON per day"
    )


def test_seeding_creates_the_public_mobile_app_client(debug):
    seed()

    app = Application.objects.get(client_id="parking-mobile-app")
    assert app.client_type == Application.CLIENT_PUBLIC
    assert app.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert app.redirect_uris == "parkingapp://oauth/callback"
    assert app.skip_authorization is True
    assert app.client_secret == ""
    assert app.hash_client_secret is False
    assert app.algorithm == ""
    app.full_clean()  # the redirect URI's custom scheme is allowed by the settings


def test_seeding_gives_the_first_driver_an_active_session_with_an_entrance_key(debug):
    before = timezone.now()
    seed()

    session = open_session_of("driver@example.com")
    parking = session.secured_parking
    assert parking.name == "Secured P 1"
    assert session.state == State.ACTIVE
    assert session.start_time < before - timedelta(hours=1)
    assert session.entrance_remaining_tries == parking.entrance_tries
    assert session.exit_remaining_tries == parking.exit_tries
    assert session.amount == 0
    assert session.currency == "RON"
    key = session.smart_key
    assert key.type == "session_access"
    assert key.driver == session.driver and key.secured_parking == parking
    assert key.start_time == session.start_time
    assert key.end_time == session.start_time + timedelta(hours=24)
    assert key.access_command
    assert set(key.access_points.all()) == set(
        parking.access_points.filter(direction=Direction.ENTRANCE)
    )
    assert not ParkingSession.objects.filter(driver__email="driver2@example.com").exists()


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("driver@example.com", "demo-driver-pass"),
        ("driver2@example.com", "demo-driver-pass"),
        ("admin@example.com", "demo-admin-pass"),
        ("staff@example.com", "demo-staff-pass"),
    ],
)
def test_the_demo_logins_authenticate(debug, email, password):
    seed()

    assert authenticate(email=email, password=password).email == email
    assert authenticate(username=email, password=password).email == email
    assert authenticate(email=email, password="wrong-password") is None


def test_the_admin_is_a_superuser_and_the_drivers_are_not(debug):
    seed()

    admin = User.objects.get(email="admin@example.com")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.filter(email__startswith="driver", is_staff=True).exists()


def test_the_demo_staff_run_the_demo_parking_and_only_it(debug):
    seed()
    SecuredParkingFactory(name="Someone else's")

    staff = User.objects.get(email="staff@example.com")
    assert staff.is_staff and not staff.is_superuser
    assert [p.name for p in SecuredParking.objects.run_by(staff)] == ["Secured P 1"]
    assert staff.has_perm("parking.operate_parkingsession")


def test_seeding_twice_creates_nothing_new(debug):
    seed()
    first = row_counts()
    session = open_session_of("driver@example.com")

    seed()

    assert row_counts() == first
    assert first == {
        "Operator": 1,
        "OperatorMembership": 1,
        "SecuredParking": 1,
        "Tariff": 1,
        "AccessPoint": 3,
        "Application": 1,
        "User": 4,
        "ParkingSession": 1,
        "SmartKey": 1,
        "ProviderCustomer": 1,
        "Card": 1,
        "Payment": 1,
    }
    assert open_session_of("driver@example.com") == session
    assert open_session_of("driver@example.com").payment == session.payment


def test_seeding_again_puts_the_demo_values_back(debug):
    seed()
    SecuredParking.objects.update(currency="EUR", is_active=False)
    ParkingSession.objects.update(state=State.EXITING, exit_remaining_tries=0)
    driver = User.objects.get(email="driver@example.com")
    driver.set_unusable_password()
    driver.save()
    Application.objects.update(skip_authorization=False, redirect_uris="https://example.com/cb")

    seed()

    parking = SecuredParking.objects.get()
    assert (parking.currency, parking.is_active) == ("RON", True)
    session = ParkingSession.objects.get()
    assert (session.state, session.exit_remaining_tries) == (State.ACTIVE, 3)
    app = Application.objects.get()
    assert (app.skip_authorization, app.redirect_uris) == (True, "parkingapp://oauth/callback")
    assert authenticate(email="driver@example.com", password="demo-driver-pass") == driver


def test_a_driver_who_already_has_an_open_session_keeps_just_that_one(debug):
    other_parking = SecuredParkingFactory(name="Elsewhere")
    existing = ParkingSessionFactory(
        driver__email="driver@example.com", secured_parking=other_parking, state=State.ENTERING
    )

    seed()

    session = open_session_of("driver@example.com")
    assert session.pk == existing.pk
    assert session.secured_parking.name == "Secured P 1"
    assert session.smart_key.secured_parking.name == "Secured P 1"
    assert SmartKey.objects.count() == 1


def test_a_closed_session_does_not_stop_a_new_open_one(debug):
    start = timezone.now() - timedelta(days=1)
    ParkingSessionFactory(
        driver__email="driver@example.com",
        state=State.FINISHED,
        start_time=start,
        end_time=start + timedelta(hours=1),
    )

    seed()

    assert open_sessions_of("driver@example.com").count() == 1


def test_with_debug_off_it_refuses_and_creates_nothing(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        seed()

    assert set(row_counts().values()) == {0}
    assert not AccessToken.objects.exists()


def test_with_debug_off_force_runs_it(settings):
    settings.DEBUG = False

    seed("--force")

    assert SecuredParking.objects.filter(name="Secured P 1").exists()


def test_it_prints_what_it_made(debug):
    output = seed()

    for text in [
        "Secured P 1",
        "76:86:BB:DE:63:AD",
        "76:86:BB:DE:63:AE",
        "76:86:BB:DE:63:AF",
        "parking-mobile-app",
        "parkingapp://oauth/callback",
        "driver@example.com",
        "driver2@example.com",
        "demo-driver-pass",
        "admin@example.com",
        "demo-admin-pass",
    ]:
        assert text in output


def test_the_printed_curl_token_reads_the_current_session(debug, api_client):
    token = token_from(seed())

    response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["smart_key"]["name"] == "Secured P 1"
    assert body["parking_session"]["state"] == "active"
    assert "76:86:BB:DE:63:AD" in {
        item["access_point"]["mac_address"] for item in body["smart_key"]["access_points"]
    }


def test_the_token_is_stored_hashed_and_scoped_to_the_driver(debug):
    raw_token = token_from(seed())

    token = AccessToken.objects.get()
    assert raw_token not in token.token
    assert token.user.email == "driver@example.com"
    assert token.application.client_id == "parking-mobile-app"
    assert token.scope == "driver"


def test_each_run_mints_a_new_token_and_the_old_one_still_works(debug, api_client):
    first, second = token_from(seed()), token_from(seed())

    assert first != second
    for token in (first, second):
        response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200


def test_the_token_lifetime_defaults_to_12_hours_and_can_be_changed(debug):
    before = timezone.now()
    seed()
    seed("--token-hours", "2")

    default, custom = AccessToken.objects.order_by("id")
    assert before + timedelta(hours=12) <= default.expires < timezone.now() + timedelta(hours=12)
    assert before + timedelta(hours=2) <= custom.expires < timezone.now() + timedelta(hours=2)


@pytest.mark.parametrize("hours", ["0", "-1", "nan", "inf", "9000", "soon"])
def test_a_token_lifetime_must_be_up_to_a_year_of_hours(debug, hours):
    with pytest.raises(CommandError):
        seed("--token-hours", hours)


def test_the_second_driver_has_no_current_session(debug, api_client):
    seed()
    token = AccessTokenFactory(user=User.objects.get(email="driver2@example.com"))

    response = api_client.get(CURRENT_URL, HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")

    assert response.status_code == 404


def test_the_demo_driver_has_stripes_test_card_saved_as_the_app_saves_one(debug, stripe):
    seed()

    card = Card.objects.get(driver__email="driver@example.com")
    assert (card.brand, card.last4, card.is_default) == ("visa", "4242", True)
    customer = ProviderCustomer.objects.get(driver=card.driver).reference
    # Stripe has the card, attached to the driver's customer.
    assert stripe.get(f"/v1/payment_methods/{card.reference}")["customer"] == customer
    assert "Card: driver@example.com pays with Visa •••• 4242" in seed()


def test_the_demo_parking_charges_by_card_and_the_open_session_is_paid_by_a_hold(debug, stripe):
    seed()

    session = open_session_of("driver@example.com")
    assert session.secured_parking.charges_by_card
    payment = session.payment
    assert (payment.state, payment.hold_amount) == (PaymentState.AUTHORIZED, Decimal("40.00"))
    assert payment.card == Card.objects.get(driver=session.driver)
    assert payment.attached_at is not None
    assert stripe.payment_intent(payment.hold_reference)["status"] == "requires_capture"
    assert session.tariff_terms == session.secured_parking.tariff.terms()
    assert session.charge_for_stay(timezone.now()) == Decimal("10.00")


def test_seeding_again_after_the_session_ended_opens_a_new_one_with_a_new_hold(debug, api_client):
    first = token_from(seed())
    session = open_session_of("driver@example.com")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    act(api_client, session.pk, "exit")
    act(api_client, session.pk, "finalize")

    seed()

    again = open_session_of("driver@example.com")
    assert again.pk != session.pk
    assert again.payment != session.payment
    assert again.payment.state == PaymentState.AUTHORIZED
    assert Card.objects.count() == 1


def test_the_demo_seller_has_a_legal_name_and_a_tax_id(debug):
    seed()

    operator = Operator.objects.get()
    assert (operator.legal_name, operator.tax_id) == ("Demo Parking SRL", "RO12345678")


def test_without_stripe_it_says_what_to_start(debug, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there

    with pytest.raises(CommandError, match="localstripe"):
        seed()


@pytest.mark.django_db(transaction=True)
def test_the_printed_walk_through_is_one_whole_paid_session(debug, stripe, live_server, request):
    if connection.vendor == "postgresql":
        # Captures are jobs; on SQLite they run in the web process after the commit.
        request.getfixturevalue("job_worker")(env={"STRIPE_API_BASE": stripe.url})
    output = seed("--api-origin", live_server.url)
    commands = output.split("Walk-through: a whole paid session (paste into a shell):\n")[1]

    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands.replace("curl ", "curl -fsS ")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode == 0, ran.stderr
    paid, free = ParkingSession.objects.order_by("pk")
    assert (paid.state, free.state) == (State.FINISHED, State.FINISHED)
    payment = wait_for_state(paid.payment_id, PaymentState.CAPTURED)
    assert (paid.amount, payment.captured_amount) == (Decimal("10.00"), Decimal("10.00"))
    assert stripe.payment_intent(paid.payment.hold_reference)["status"] == "succeeded"
    assert free.amount == Decimal("0.00")
    assert wait_for_state(free.payment_id, PaymentState.RELEASED).captured_amount == 0
    # The payment after finalize: captured, or being captured by the worker on PostgreSQL.
    fixed = r'"state":"captur(ed|ing)","currency":"RON","hold_amount":"40.00","amount":"10.00"'
    assert re.search(fixed, ran.stdout)
    assert f'"number":"{paid.pk:08d}"' in ran.stdout
    assert f"Chitanța nr. {paid.pk:08d}" in ran.stdout


def test_the_demo_confirms_test_cards_with_a_test_key_only(stripe):
    with pytest.raises(ValueError, match="test publishable key"):
        confirm_card_setup(
            api_base=stripe.url,
            publishable_key="pk_live_123",
            client_secret="seti_1_secret_2",
            number=CARD_OK,
        )
