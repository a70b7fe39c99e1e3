"""Demo data for a local backend: one parking that charges by card, the mobile app's OAuth
client, some logins, the demo driver's saved test card and their open session, paid by a
hold on it.

Every function finds its rows by a natural key (name, MAC address, client id, email) and
puts the demo values back, so seeding twice leaves the same rows as seeding once. The card and
the hold go through Stripe as the app's would (localstripe, which ``make run`` starts): the
customer and the SetupIntent from the payments services, the card confirmed with Stripe as
the phone does, the hold placed by the start's own service.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from oauth2_provider.models import AccessToken, Application, set_token_value
from oauth2_provider.settings import oauth2_settings

from accounts.models import User
from parking.models import (
    OPEN_STATES,
    PARKED_STATES,
    Operator,
    ParkingSession,
    SecuredParking,
    SessionType,
    State,
    Tariff,
)
from parking.services import paying
from parking.services.access import issue_session_command
from parking.services.occupancy import count_car_in, count_car_out
from parking.services.operators import add_operator_staff
from payments import services as payments
from payments.demo import CARD_OK, confirm_card_setup
from payments.models import Card, Payment, PaymentState
from smart_keys.models import AccessPoint, Direction, SmartKey, SmartKeyType

PARKING_NAME = "Secured P 1"
OPERATOR_NAME = "Demo Parking SRL"
OPERATOR_TAX_ID = "RO12345678"
# (name, direction, MAC): the first MAC is the one in the current-session seed document.
ACCESS_POINTS = (
    ("Entrance A", Direction.ENTRANCE, "76:86:BB:DE:63:AD"),
    ("Entrance B", Direction.ENTRANCE, "76:86:BB:DE:63:AE"),
    ("Exit", Direction.EXIT, "76:86:BB:DE:63:AF"),
)
MOBILE_APP_CLIENT_ID = "parking-mobile-app"
MOBILE_APP_REDIRECT_URI = "parkingapp://oauth/callback"
API_DOCS_REDIRECT_PATH = "/api/docs/oauth2-redirect.html"
API_DOCS_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")
DRIVER_EMAIL = "driver@example.com"
SECOND_DRIVER_EMAIL = "driver2@example.com"
DRIVER_PASSWORD = "demo-driver-pass"  # noqa: S105 - published demo login
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "demo-admin-pass"  # noqa: S105 - published demo login
STAFF_EMAIL = "staff@example.com"
STAFF_PASSWORD = "demo-staff-pass"  # noqa: S105 - published demo login
SESSION_AGE = timedelta(hours=1, minutes=10)
SESSION_KEY_VALIDITY = timedelta(hours=24)


@dataclass(frozen=True)
class DemoData:
    parking: SecuredParking
    access_points: list[AccessPoint]
    application: Application
    driver: User
    second_driver: User
    admin: User
    session: ParkingSession
    access_token: AccessToken
    raw_access_token: str
    operator: Operator
    staff: User
    api_docs_client: Application | None
    card: Card


def seed_operator() -> Operator:
    """The demo parking's company, named on receipts as their seller (a made-up tax id)."""
    operator, _created = Operator.objects.update_or_create(
        name=OPERATOR_NAME, defaults={"legal_name": OPERATOR_NAME, "tax_id": OPERATOR_TAX_ID}
    )
    return operator


def seed_parking(*, operator: Operator | None = None) -> SecuredParking:
    parking, _created = SecuredParking.objects.update_or_create(
        name=PARKING_NAME,
        defaults={
            "operator": operator,
            "description": "Underground, 2 levels, open 24/7. Demo data.",
            "address": "Strada Exemplu 1, Cluj-Napoca 400000, Romania",
            "latitude": Decimal("46.770439"),
            "longitude": Decimal("23.591423"),
            "currency": "RON",
            "is_active": True,
            "is_online": False,
            "capacity": 100,
            "charges_by_card": True,
            "hold_amount": None,
            "entrance_tries": 3,
            "exit_tries": 3,
        },
    )
    return parking


def seed_tariff(*, parking: SecuredParking) -> Tariff:
    tariff, _created = Tariff.objects.update_or_create(
        secured_parking=parking,
        defaults={
            "free_minutes": 15,
            "period_minutes": 60,
            "price_per_period": Decimal("5.00"),
            "daily_cap": Decimal("40.00"),
        },
    )
    return tariff


def seed_access_points(*, parking: SecuredParking) -> list[AccessPoint]:
    """The demo barriers; a MAC already used elsewhere is moved back to the demo parking."""
    return [
        AccessPoint.objects.update_or_create(
            mac_address=mac_address,
            defaults={"secured_parking": parking, "name": name, "direction": direction},
        )[0]
        for name, direction, mac_address in ACCESS_POINTS
    ]


def seed_mobile_app() -> Application:
    """The mobile app's OAuth client."""
    return _seed_public_client(
        MOBILE_APP_CLIENT_ID, "Parking mobile app", [MOBILE_APP_REDIRECT_URI]
    )


def seed_api_docs_client(*, origins: Sequence[str]) -> Application:
    """Swagger UI's OAuth client (``API_DOCS_SIGN_IN``), coming back to the docs' redirect
    page at each origin the docs are served from, e.g. ``http://127.0.0.1:8000``."""
    return _seed_public_client(
        settings.API_DOCS_CLIENT_ID,
        "API docs (Swagger UI)",
        [origin.rstrip("/") + API_DOCS_REDIRECT_PATH for origin in origins],
    )


def _seed_public_client(client_id: str, name: str, redirect_uris: list[str]) -> Application:
    """A public OAuth client (no secret; PKCE), first-party, so no consent screen."""
    application, _created = Application.objects.update_or_create(
        client_id=client_id,
        defaults={
            "name": name,
            "client_type": Application.CLIENT_PUBLIC,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": " ".join(redirect_uris),
            "skip_authorization": True,
            # A public client has no secret; left to hash, DOT would store a hash of "".
            "hash_client_secret": False,
            "client_secret": "",
            "algorithm": Application.NO_ALGORITHM,
        },
    )
    return application


def seed_user(*, email: str, password: str, is_superuser: bool = False) -> User:
    user = User.objects.filter(email__iexact=email).first() or User.objects.create_user(email)
    user.set_password(password)
    user.is_active = True
    user.is_staff = user.is_superuser = is_superuser
    user.save()
    return user


def seed_card(*, driver: User, now: datetime) -> Card:
    """The driver's default card: Stripe's test Visa, saved as the app saves one (a
    SetupIntent from the backend, confirmed with Stripe by the phone). A card already saved
    is kept. Calls Stripe: never inside a transaction."""
    card = Card.objects.filter(driver=driver, is_default=True).first()
    if card is not None:
        return card
    setup = payments.start_card_setup(driver=driver, now=now)
    confirmed = confirm_card_setup(
        api_base=settings.STRIPE_API_BASE or "https://api.stripe.com",
        publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
        client_secret=setup.client_secret,
        number=CARD_OK,
    )
    confirmed.raise_for_status()
    payments.cards_of(driver=driver, now=now)
    return Card.objects.get(driver=driver, is_default=True)


def seed_hold(*, driver: User, parking: SecuredParking, now: datetime) -> Payment:
    """The hold that pays the driver's open session: the one it has, or a new one placed on
    the default card by the start's own service. Calls Stripe: never inside a transaction."""
    session = _open_session_of(driver)
    if session is not None and session.payment is not None:
        if session.payment.state == PaymentState.AUTHORIZED:
            return session.payment
    payment = paying.hold_for_start(driver=driver, parking=parking, idempotency_key=None, now=now)
    assert payment is not None  # the demo parking charges by card
    return payment


def _open_session_of(driver: User) -> ParkingSession | None:
    # Every row the one-open-session constraint counts, stale ``entering`` ones included.
    return (
        ParkingSession.objects.for_driver(driver)
        .filter(state__in=OPEN_STATES)
        .select_related("smart_key", "payment")
        .first()
    )


def seed_open_session(
    *, driver: User, parking: SecuredParking, payment: Payment | None = None, now: datetime
) -> ParkingSession:
    """An active session that started a while ago at the tariff of now, with its entrance
    key, paid by ``payment`` (a hold from ``seed_hold``).

    The driver's open session, if any, is reused and reset, since a driver may have only one.
    """
    start_time = now - SESSION_AGE
    session = _open_session_of(driver)
    key = (session.smart_key if session else None) or SmartKey()
    if session is not None and session.state in PARKED_STATES:
        count_car_out(secured_parking_id=session.secured_parking_id)
    session = session or ParkingSession(driver=driver)
    session.smart_key = _seed_session_key(
        key=key, driver=driver, parking=parking, start_time=start_time
    )
    session.secured_parking = parking
    session.type = SessionType.PAY_PER_USE
    session.state = State.ACTIVE
    session.start_time = start_time
    session.end_time = None
    session.entrance_remaining_tries = parking.entrance_tries
    session.exit_remaining_tries = parking.exit_tries
    session.amount = Decimal("0.00")
    session.currency = parking.currency
    # Read back: the prices as stored (5.0000), as a start keeps them.
    session.tariff_terms = Tariff.objects.get(secured_parking=parking).terms()
    session.vat_rate = None
    session.payment = payment
    session.save()
    count_car_in(secured_parking_id=parking.pk)
    if payment is not None:
        payments.attach(payment=payment, now=now)
    # A genuine signed command (valid for ACCESS_COMMAND_VALIDITY from now), not a placeholder.
    issue_session_command(session=session, now=now)
    # The demo key stays valid for a day from the session's start, not a fresh command's window.
    SmartKey.objects.filter(pk=session.smart_key_id).update(
        start_time=start_time, end_time=start_time + SESSION_KEY_VALIDITY
    )
    session.smart_key.refresh_from_db()
    return session


def _seed_session_key(
    *, key: SmartKey, driver: User, parking: SecuredParking, start_time: datetime
) -> SmartKey:
    key.driver = driver
    key.secured_parking = parking
    key.type = SmartKeyType.SESSION_ACCESS
    key.description = f"Session access to {parking.name}"
    key.start_time = start_time
    key.end_time = start_time + SESSION_KEY_VALIDITY
    key.save()
    key.access_points.set(parking.access_points.filter(direction=Direction.ENTRANCE))
    return key


def mint_access_token(
    *, user: User, application: Application, now: datetime, lifetime: timedelta | None = None
) -> tuple[AccessToken, str]:
    """A new bearer token for ``user``; returns the row and the raw value, which is only
    stored hashed. ``lifetime`` defaults to the one django-oauth-toolkit issues."""
    if lifetime is None:
        lifetime = timedelta(seconds=oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
    raw_token = secrets.token_urlsafe(30)
    token = AccessToken(user=user, application=application, scope="driver", expires=now + lifetime)
    set_token_value(token, raw_token)
    token.save()
    return token, raw_token


def seed_demo(
    *,
    now: datetime,
    token_lifetime: timedelta | None = None,
    api_docs_origins: Sequence[str] = API_DOCS_ORIGINS,
) -> DemoData:
    """Create or reset all demo data, and mint a fresh token for the driver with a session.
    The API docs' client only with ``API_DOCS_SIGN_IN`` on. Stripe is called between the
    two transactions (raises ``PaymentProviderUnavailable`` when it cannot be reached)."""
    with transaction.atomic():
        operator = seed_operator()
        parking = seed_parking(operator=operator)
        seed_tariff(parking=parking)
        access_points = seed_access_points(parking=parking)
        application = seed_mobile_app()
        driver = seed_user(email=DRIVER_EMAIL, password=DRIVER_PASSWORD)
        second_driver = seed_user(email=SECOND_DRIVER_EMAIL, password=DRIVER_PASSWORD)
        admin = seed_user(email=ADMIN_EMAIL, password=ADMIN_PASSWORD, is_superuser=True)
        staff = seed_user(email=STAFF_EMAIL, password=STAFF_PASSWORD)
        add_operator_staff(user=staff, operator=operator)
    card = seed_card(driver=driver, now=now)
    payment = seed_hold(driver=driver, parking=parking, now=now)
    with transaction.atomic():
        session = seed_open_session(driver=driver, parking=parking, payment=payment, now=now)
        access_token, raw_access_token = mint_access_token(
            user=driver, application=application, now=now, lifetime=token_lifetime
        )
        api_docs_client = (
            seed_api_docs_client(origins=api_docs_origins) if settings.API_DOCS_SIGN_IN else None
        )
    return DemoData(
        parking=parking,
        access_points=access_points,
        application=application,
        driver=driver,
        second_driver=second_driver,
        admin=admin,
        session=session,
        access_token=access_token,
        raw_access_token=raw_access_token,
        operator=operator,
        staff=staff,
        api_docs_client=api_docs_client,
        card=card,
    )
