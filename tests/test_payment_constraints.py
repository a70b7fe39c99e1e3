"""Money invariants held by PostgreSQL whatever the code does: nothing captured beyond the
amount, nothing refunded beyond what was captured, a paid payment took exactly its amount,
a debt knows since when it is owed."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.models import Payment, PaymentState
from tests.factories import DriverFactory

pytestmark = pytest.mark.django_db


def payment(**fields) -> Payment:
    now = timezone.now()
    values = {
        "driver": DriverFactory(),
        "provider": "stripe",
        "idempotency_key": "k",
        "state": PaymentState.CAPTURING,
        "currency": "RON",
        "hold_amount": Decimal("40.00"),
        "amount": Decimal("10.00"),
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    return Payment.objects.create(**values)


@pytest.mark.parametrize(
    "fields",
    [
        {"captured_amount": Decimal("10.01")},
        {"captured_amount": Decimal("5.00"), "refunded_amount": Decimal("5.01")},
        {"state": PaymentState.CAPTURED, "captured_amount": Decimal("9.99")},
        {"hold_amount": Decimal("0")},
        {"state": "paid"},
        # A debt says since when (the back office lists debts by it).
        {"state": PaymentState.OUTSTANDING, "outstanding_since": None},
    ],
)
def test_the_database_refuses_money_that_does_not_add_up(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        payment(**fields)


def test_money_that_adds_up_is_accepted():
    paid = payment(
        state=PaymentState.CAPTURED,
        captured_amount=Decimal("10.00"),
        refunded_amount=Decimal("2.50"),
    )

    assert paid.captured_amount - paid.refunded_amount == Decimal("7.50")


def test_one_payment_per_idempotency_key_and_driver():
    first = payment()

    with pytest.raises(IntegrityError), transaction.atomic():
        payment(driver=first.driver)
