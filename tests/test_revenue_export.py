"""The back office's revenue export: a CSV per day (Europe/Bucharest), parking and currency of
what card payments captured (on the day they were taken in full), what was refunded (on the
refund's day), the net and the VAT included in it at each session's rate, and the sessions
paid; exact sums, each operator's staff seeing only their parkings."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from parking.models import ParkingSession, State
from payments.models import PaymentState, Refund, RefundState
from tests.factories import (
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    paid_by,
)

pytestmark = pytest.mark.django_db

URL = "/admin/revenue/"
RANGE = {"first_day": "2026-12-01", "last_day": "2026-12-02"}
HEADER = [
    "Date",
    "Parking",
    "Currency",
    "Captured",
    "Refunded",
    "Net",
    "VAT included in net",
    "Sessions",
]


def utc(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def captured(parking, amount: str, at: datetime, *, vat_rate="0.2100", refunds=()):
    """A finished session at ``parking`` whose payment took ``amount`` at ``at``, with
    ``refunds`` ((amount, when), in order) made since; the session says what it kept."""
    taken = Decimal(amount)
    refunded = sum((Decimal(refund) for refund, _when in refunds), Decimal("0.00"))
    session = ParkingSessionFactory(
        secured_parking=parking,
        state=State.FINISHED,
        start_time=utc(1, 6, month=11),
        end_time=at,
        amount=taken - refunded,
        vat_rate=Decimal(vat_rate),
    )
    payment = paid_by(
        session,
        state=PaymentState.CAPTURED,
        amount=taken,
        captured_amount=taken,
        refunded_amount=refunded,
        captured_at=at,
    )
    kept = taken
    for refund, when in refunds:
        kept -= Decimal(refund)
        Refund.objects.create(
            payment=payment,
            amount=Decimal(refund),
            reason="Overcharged",
            state=RefundState.SUCCEEDED,
            charge_reference=payment.hold_reference,
            provider_reference=f"re_{payment.pk}_{kept}",
            kept_after=kept,
            created_at=when,
            refunded_at=when,
        )
    return session


@pytest.fixture
def operators():
    """Two operators: Cluj's parkings Centru and Gara, Brașov's parking Brașov."""
    cluj, brasov = OperatorFactory(name="Cluj Parking SRL"), OperatorFactory(name="Brasov SRL")
    centru = SecuredParkingFactory(operator=cluj, name="Centru")
    gara = SecuredParkingFactory(operator=cluj, name="Gara")
    brasov_parking = SecuredParkingFactory(operator=brasov, name="Brașov")
    captured(centru, "10.00", utc(1, 10), refunds=[("3.33", utc(1, 12)), ("1.00", utc(2, 9))])
    # 00:30 on 2 December in Bucharest (UTC+2 in winter): the 2nd's.
    captured(centru, "15.00", utc(1, 22, 30))
    captured(gara, "7.00", utc(1, 8), vat_rate="0.1900")
    captured(brasov_parking, "20.00", utc(1, 9), refunds=[("20.00", utc(1, 11))])
    # Outside the days asked: 23:59 on 30 November in Bucharest, a refund on 3 December.
    captured(centru, "5.00", utc(30, 21, 59, month=11), refunds=[("5.00", utc(3, 8))])
    # A debt: nothing taken in full, nothing counted.
    owing = ParkingSessionFactory(secured_parking=centru, state=State.FINISHED, amount=9)
    paid_by(owing, state=PaymentState.OUTSTANDING, amount=Decimal("9.00"), captured_amount=4)
    return cluj, brasov


def export(client: Client, **params) -> list[list[str]]:
    response = client.get(URL, params or RANGE, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # spreadsheets then read it as UTF-8
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == HEADER
    return rows[1:]


def test_a_superuser_gets_every_parking_per_bucharest_day(superuser_client, operators):
    assert export(superuser_client) == [
        ["2026-12-01", "Brașov", "RON", "20.00", "20.00", "0.00", "0.00", "1"],
        # 10.00 (VAT 1.74) less 3.33 (the VAT of 10.00 less that of 6.67: 0.58)
        ["2026-12-01", "Centru", "RON", "10.00", "3.33", "6.67", "1.16", "1"],
        # At the session's 19%.
        ["2026-12-01", "Gara", "RON", "7.00", "0.00", "7.00", "1.12", "1"],
        # 15.00 (VAT 2.60) less 1.00 refunded of the 1st's session (1.16 - 0.98 = 0.18)
        ["2026-12-02", "Centru", "RON", "15.00", "1.00", "14.00", "2.42", "1"],
    ]


def test_staff_get_their_operators_parkings_only(operators):
    cluj, brasov = operators
    cluj_staff, brasov_staff = Client(), Client()
    cluj_staff.force_login(OperatorStaffFactory(operator=cluj))
    brasov_staff.force_login(OperatorStaffFactory(operator=brasov))

    assert [row[:2] for row in export(cluj_staff)] == [
        ["2026-12-01", "Centru"],
        ["2026-12-01", "Gara"],
        ["2026-12-02", "Centru"],
    ]
    assert export(brasov_staff) == [
        ["2026-12-01", "Brașov", "RON", "20.00", "20.00", "0.00", "0.00", "1"]
    ]


def test_the_vat_of_the_days_adds_up_to_that_of_the_sessions(superuser_client, operators):
    everything = export(superuser_client, first_day="2026-11-01", last_day="2026-12-31")

    centru = ParkingSession.objects.filter(
        secured_parking__name="Centru", payment__state="captured"
    )
    assert sum(Decimal(row[6]) for row in everything if row[1] == "Centru") == sum(
        session.vat_amount for session in centru
    )
    assert sum(Decimal(row[5]) for row in everything if row[1] == "Centru") == sum(
        session.amount for session in centru
    )
    assert ["2026-11-30", "Centru", "RON", "5.00", "0.00", "5.00", "0.87", "1"] in everything
    assert ["2026-12-03", "Centru", "RON", "0.00", "5.00", "-5.00", "-0.87", "0"] in everything


def test_the_export_costs_the_same_queries_however_many_rows(
    superuser_client, operators, django_assert_num_queries
):
    # session + user, captures, refunds, the parkings' names
    with django_assert_num_queries(5):
        superuser_client.get(URL, RANGE)


def test_the_form_asks_for_the_days_and_refuses_a_reversed_range(superuser_client, operators):
    page = superuser_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert 'id="revenue-export-form"' in page.content.decode()

    reversed_range = superuser_client.get(
        URL, {"first_day": "2026-12-02", "last_day": "2026-12-01"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert reversed_range["Content-Type"].startswith("text/html")
    assert "The last day comes before the first." in reversed_range.content.decode()


def test_the_session_list_links_the_export(superuser_client):
    page = superuser_client.get("/admin/parking/parkingsession/").content.decode()

    assert f'href="{URL}" id="revenue-export"' in page


def test_staff_without_the_sessions_cannot_export(operators):
    from django.contrib.auth.models import Group

    staff = OperatorStaffFactory(operator=operators[0])
    staff.groups.set(Group.objects.none())
    client = Client()
    client.force_login(staff)

    assert client.get(URL, RANGE).status_code == 403
