import secrets
from datetime import timedelta
from decimal import Decimal

import factory
from django.db.models import Sum
from django.utils import timezone
from factory.django import DjangoModelFactory
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.models import User
from parking.models import (
    PARKED_STATES,
    Operator,
    ParkingSession,
    SecuredParking,
    State,
    Tariff,
)
from parking.services.occupancy import count_car_in
from parking.services.operators import add_operator_staff
from payments.models import Payment, PaymentState, Refund, RefundState
from smart_keys.models import AccessPoint, BarrierGateway, Direction, SmartKey

MOBILE_APP_REDIRECT_URI = "parkingapp://oauth/callback"


class DriverFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"driver{n}@example.com")
    password = factory.django.Password("correct-horse-battery")


class SuperuserFactory(DriverFactory):
    """A superuser: sees every operator's parkings in the back office."""

    email = factory.Sequence(lambda n: f"superuser{n}@example.com")
    is_staff = True
    is_superuser = True


class OperatorFactory(DjangoModelFactory):
    """An ``Operator``: the parking company that owns secured parkings."""

    class Meta:
        model = Operator
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Parking company {n}")


class OperatorStaffFactory(DriverFactory):
    """Back-office staff of one operator (``operator=…``), made so by the real service."""

    class Meta:
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@example.com")

    @factory.post_generation
    def operator(self, create, extracted, **kwargs):
        if create:
            add_operator_staff(user=self, operator=extracted or OperatorFactory())


class MobileApplicationFactory(DjangoModelFactory):
    class Meta:
        model = Application
        django_get_or_create = ("client_id",)

    name = "Parking mobile app"
    client_id = "parking-mobile-app"
    client_type = Application.CLIENT_PUBLIC
    authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    redirect_uris = MOBILE_APP_REDIRECT_URI
    skip_authorization = True
    hash_client_secret = False
    client_secret = ""
    algorithm = ""


class AccessTokenFactory(DjangoModelFactory):
    """A real django-oauth-toolkit access token; the raw bearer value is on ``.raw_token``."""

    class Meta:
        model = AccessToken

    user = factory.SubFactory(DriverFactory)
    application = factory.SubFactory(MobileApplicationFactory)
    scope = "driver"
    expires = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        raw_token = kwargs.pop("raw_token", None) or secrets.token_urlsafe(30)
        token = model_class(*args, **kwargs)
        set_token_value(token, raw_token)
        token.save()
        token.raw_token = raw_token
        return token


class SecuredParkingFactory(DjangoModelFactory):
    class Meta:
        model = SecuredParking
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Secured P {n}")
    description = "Underground, 2 levels"
    address = "Strada Exemplu 1, Cluj-Napoca"
    currency = "RON"
    entrance_tries = 3
    exit_tries = 3
    capacity = 100
    # Card payments need localstripe (tests/payments.py); tests of payments turn them on.
    charges_by_card = False
    tariff = factory.RelatedFactory(
        "tests.factories.TariffFactory", factory_related_name="secured_parking"
    )

    @factory.post_generation
    def access_points(self, create, extracted, **kwargs):
        """``access_points=N`` adds N entrance barriers and one exit barrier."""
        if not create or not extracted:
            return
        for _ in range(extracted):
            AccessPointFactory(secured_parking=self, direction=Direction.ENTRANCE)
        AccessPointFactory(secured_parking=self, direction=Direction.EXIT)


class TariffFactory(DjangoModelFactory):
    class Meta:
        model = Tariff

    secured_parking = factory.SubFactory(SecuredParkingFactory, tariff=None)
    free_minutes = 15
    period_minutes = 60
    price_per_period = Decimal("5.00")
    daily_cap = Decimal("40.00")


def _mac_for(n: int) -> str:
    return ":".join(f"{byte:02X}" for byte in (0x02, 0, *(n).to_bytes(4, "big")))


class AccessPointFactory(DjangoModelFactory):
    class Meta:
        model = AccessPoint

    secured_parking = factory.SubFactory(SecuredParkingFactory)
    direction = Direction.ENTRANCE
    name = factory.LazyAttribute(lambda o: f"{o.direction} barrier")
    mac_address = factory.Sequence(_mac_for)


class SmartKeyFactory(DjangoModelFactory):
    class Meta:
        model = SmartKey
        skip_postgeneration_save = True

    driver = factory.SubFactory(DriverFactory)
    secured_parking = factory.SubFactory(SecuredParkingFactory)
    description = "Session access key"
    start_time = factory.LazyFunction(timezone.now)
    end_time = factory.LazyAttribute(lambda o: o.start_time + timedelta(days=1))
    access_command = factory.LazyFunction(lambda: secrets.token_urlsafe(24))

    @factory.post_generation
    def access_points(self, create, extracted, **kwargs):
        """By default the key opens its parking's entrance barriers."""
        if not create:
            return
        if extracted is None:
            extracted = self.secured_parking.access_points.filter(direction=Direction.ENTRANCE)
        self.access_points.set(extracted)


class ParkingSessionFactory(DjangoModelFactory):
    class Meta:
        model = ParkingSession

    driver = factory.SubFactory(DriverFactory)
    secured_parking = factory.SubFactory(SecuredParkingFactory)
    smart_key = factory.SubFactory(
        SmartKeyFactory,
        driver=factory.SelfAttribute("..driver"),
        secured_parking=factory.SelfAttribute("..secured_parking"),
    )
    state = State.ACTIVE
    start_time = factory.LazyFunction(timezone.now)
    entrance_remaining_tries = factory.SelfAttribute("secured_parking.entrance_tries")
    exit_remaining_tries = factory.SelfAttribute("secured_parking.exit_tries")
    currency = factory.SelfAttribute("secured_parking.currency")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # A session made parked holds a place, as if it had come through the entrance.
        session = super()._create(model_class, *args, **kwargs)
        if session.state in PARKED_STATES:
            count_car_in(secured_parking_id=session.secured_parking_id)
        return session


class PaymentFactory(DjangoModelFactory):
    """A card payment as the payment services leave it (``state``, ``amount``,
    ``captured_amount``, …); give it to a session with ``paid_by``. No provider is called."""

    class Meta:
        model = Payment

    driver = factory.SubFactory(DriverFactory)
    provider = "stripe"
    idempotency_key = factory.Sequence(lambda n: f"payment-key-{n}")
    state = PaymentState.AUTHORIZED
    currency = "RON"
    hold_amount = Decimal("40.00")
    hold_reference = factory.Sequence(lambda n: f"pi_test_{n}")
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.SelfAttribute("created_at")
    outstanding_since = factory.LazyAttribute(
        lambda o: o.updated_at if o.state == PaymentState.OUTSTANDING else None
    )
    captured_at = factory.LazyAttribute(
        lambda o: o.updated_at if o.state == PaymentState.CAPTURED else None
    )


def refund_made(payment: Payment, amount: str, at) -> Refund:
    """A refund of ``amount`` that succeeded at ``at`` (the payment's ``refunded_amount`` is
    the caller's); what the payment kept after it counts the refunds made before."""
    before = payment.refunds.filter(state=RefundState.SUCCEEDED).aggregate(total=Sum("amount"))
    kept = payment.captured_amount - (before["total"] or 0) - Decimal(amount)
    return Refund.objects.create(
        payment=payment,
        amount=Decimal(amount),
        reason="Overcharged",
        state=RefundState.SUCCEEDED,
        charge_reference=payment.hold_reference,
        provider_reference=f"re_{payment.pk}_{kept}",
        kept_after=kept,
        created_at=at,
        refunded_at=at,
    )


def paid_by(session: ParkingSession, **payment_fields) -> Payment:
    """``session`` with a card payment of its driver (PaymentFactory's fields)."""
    payment = PaymentFactory(driver=session.driver, currency=session.currency, **payment_fields)
    session.payment = payment
    session.save(update_fields=["payment"])
    return payment


class BarrierGatewayFactory(DjangoModelFactory):
    """An online parking's gateway; pass ``url`` (a loopback test server) and ``credential``."""

    class Meta:
        model = BarrierGateway

    secured_parking = factory.SubFactory(SecuredParkingFactory, is_online=True)
    url = "http://127.0.0.1:9/open"
    credential = "gateway-test-credential"


def finished_sessions(
    parking: SecuredParking, drivers: list[User], count: int, *, first_start, step: timedelta
) -> list[ParkingSession]:
    """``count`` finished one-hour sessions at ``parking``, of ``drivers`` in turn, the first
    starting at ``first_start`` and each next one ``step`` later: two bulk INSERTs, for tests
    that need more rows than a cap allows. Their keys open no access point."""
    starts = [first_start + i * step for i in range(count)]
    keys = SmartKey.objects.bulk_create(
        SmartKey(
            driver=drivers[i % len(drivers)],
            secured_parking=parking,
            start_time=start,
            end_time=start + timedelta(hours=1),
        )
        for i, start in enumerate(starts)
    )
    return ParkingSession.objects.bulk_create(
        ParkingSession(
            driver=key.driver,
            secured_parking=parking,
            smart_key=key,
            state=State.FINISHED,
            start_time=key.start_time,
            end_time=key.end_time,
            entrance_remaining_tries=parking.entrance_tries,
            exit_remaining_tries=parking.exit_tries,
            currency=parking.currency,
        )
        for key in keys
    )
