"""The back-office dashboard: per parking, occupancy now, today's sessions and revenue (the
money card payments captured, less refunds), and sessions started per hour over the last
day, drawn server-side."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from parking.dashboard import HOURS, dashboard_for
from parking.models import State
from payments.models import Payment, PaymentState
from tests.api import act
from tests.back_office import staff_client
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    SuperuserFactory,
    paid_by,
    refund_made,
)
from tests.payments import PAYMENT_METHODS_URL, parked_for, save_card, wait_for_state

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin-dashboard")
NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


@pytest.fixture
def operator():
    return OperatorFactory(name="Cluj Parking SRL")


@pytest.fixture
def parking(operator):
    return SecuredParkingFactory(operator=operator, name="Gara", capacity=4)


def session_at(parking, start: datetime, state=State.FINISHED, **kwargs):
    if state in (State.FINISHED, State.CANCELLED):
        kwargs.setdefault("end_time", start + timedelta(hours=1))
    return ParkingSessionFactory(
        secured_parking=parking, driver=DriverFactory(), start_time=start, state=state, **kwargs
    )


def paid_session_at(parking, start: datetime, amount: str, *, captured: str, refunds=(), **kw):
    """A finished session whose card payment captured ``captured`` of ``amount``, taken in
    full at its end when that is all of it, with ``refunds`` ((amount, when)) made since."""
    session = session_at(parking, start, amount=amount, **kw)
    in_full = captured == amount
    payment = paid_by(
        session,
        state=PaymentState.CAPTURED if in_full else PaymentState.OUTSTANDING,
        amount=Decimal(amount),
        captured_amount=Decimal(captured),
        refunded_amount=sum((Decimal(refund) for refund, _when in refunds), Decimal("0")),
        captured_at=session.end_time if in_full else None,
    )
    for refund, when in refunds:
        refund_made(payment, refund, when)
    return session


def test_the_dashboard_counts_open_sessions_today_and_revenue(operator, parking):
    session_at(parking, NOW - timedelta(minutes=5), State.ENTERING)
    session_at(parking, NOW - timedelta(hours=3), State.ACTIVE)
    session_at(parking, NOW - timedelta(hours=20), State.EXITING, amount="7.00")
    session_at(parking, NOW - timedelta(hours=2), State.ENTERING)  # past its deadline
    paid_session_at(parking, NOW - timedelta(hours=2), "5.00", captured="5.00")  # today
    paid_session_at(parking, NOW - timedelta(hours=4), "2.50", captured="2.50")  # today
    # Finished yesterday.
    paid_session_at(parking, NOW - timedelta(days=1, hours=2), "9.00", captured="9.00")
    user = SuperuserFactory()

    figures = dashboard_for(user=user, now=NOW).parkings[0]

    assert figures.parking == parking
    assert figures.open_sessions == 3
    assert figures.free_places == 1
    # Started since midnight: 5 min, 3 h, 2 h (stale), 2 h and 4 h ago.
    assert figures.started_today == 5
    assert figures.revenue_today == Decimal("7.50")


def test_the_chart_has_a_bar_per_hour_scaled_to_the_busiest(parking):
    for minutes_ago in (1, 10, 20, 70, 23 * 60 + 20, 25 * 60):
        session_at(parking, NOW - timedelta(minutes=minutes_ago))

    chart = dashboard_for(user=SuperuserFactory(), now=NOW).parkings[0].started_per_hour

    counts = [bar.count for bar in chart.bars]
    assert len(counts) == HOURS
    assert counts[-1] == 3  # 14:00–15:00, this hour
    assert counts[-2] == 1  # 13:00–14:00
    assert counts[0] == 1  # 15:00–16:00 yesterday; the session 25 h ago is out
    assert sum(counts) == 5 == chart.total
    tallest = max(chart.bars, key=lambda bar: bar.count)
    assert (tallest.y, tallest.height) == (0, chart.baseline)
    assert chart.bars[-2].height == round(chart.baseline / 3)
    assert chart.bars[-3].height == 0
    assert chart.bars[-1].label == "14:00–15:00"


def test_revenue_is_the_money_taken_today_less_todays_refunds_not_the_amounts_computed(parking):
    today, yesterday = NOW - timedelta(hours=2), NOW - timedelta(days=1, hours=2)
    paid_session_at(parking, today, "10.00", captured="10.00")
    # Amount fixed at exit, capture refused: a debt, not revenue.
    paid_session_at(parking, today, "10.00", captured="0.00")
    # The hold captured, the charge above it refused: not taken in full, not counted yet.
    paid_session_at(parking, today, "15.00", captured="5.00")
    paid_session_at(parking, today, "8.00", captured="8.00", refunds=[("3.00", NOW)])
    # Taken yesterday, refunded today: today's revenue gives it back.
    paid_session_at(parking, yesterday, "6.00", captured="6.00", refunds=[("2.00", NOW)])
    # A stay at a parking that does not charge by card: no money came in through the app.
    session_at(parking, today, amount="7.00")

    dashboard = dashboard_for(user=SuperuserFactory(), now=NOW)

    assert dashboard.parkings[0].revenue_today == Decimal("13.00")  # 10 + 8 - 3 - 2
    assert dashboard.revenue_today == {"RON": Decimal("13.00")}


def test_todays_revenue_is_the_revenue_exports_day(operator, parking):
    start = NOW - timedelta(hours=2)
    paid_session_at(parking, start, "8.00", captured="8.00", refunds=[("3.00", NOW)])
    client = staff_client(operator)

    export = client.get("/admin/revenue/", {"first_day": NOW.date(), "last_day": NOW.date()})
    dashboard = dashboard_for(user=OperatorStaffFactory(operator=operator), now=NOW)

    (row,) = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert Decimal(row["Net"]) == dashboard.parkings[0].revenue_today == Decimal("5.00")


def test_staff_see_only_their_operators_revenue(operator, parking):
    theirs = SecuredParkingFactory(operator=OperatorFactory(), name="Theirs")
    paid_session_at(parking, NOW - timedelta(hours=2), "6.00", captured="6.00")
    paid_session_at(theirs, NOW - timedelta(hours=2), "50.00", captured="50.00")

    dashboard = dashboard_for(user=OperatorStaffFactory(operator=operator), now=NOW)

    assert [figures.parking for figures in dashboard.parkings] == [parking]
    assert dashboard.revenue_today == {"RON": Decimal("6.00")}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_capture_is_revenue_and_a_capture_that_failed_is_not(
    make_driver_client, localstripe, job_worker, operator
):
    parking = SecuredParkingFactory(operator=operator, charges_by_card=True)
    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    paying, owing = make_driver_client(), make_driver_client()
    save_card(paying, localstripe)
    owing_card = save_card(owing, localstripe)
    paid = parked_for(paying, parking, timedelta(minutes=70))
    unpaid = parked_for(owing, parking, timedelta(minutes=70))
    # By exit time the owing driver's hold is gone at Stripe and the card removed: neither
    # the capture nor a charge instead can take the 10.00.
    localstripe.cancel_payment_intent(Payment.objects.get(pk=unpaid.payment_id).hold_reference)
    owing.delete(f"{PAYMENT_METHODS_URL}/{owing_card['id']}")

    for client, session in ((paying, paid), (owing, unpaid)):
        act(client, session.pk, "exit")
        act(client, session.pk, "finalize")
    captured = wait_for_state(paid.payment_id, PaymentState.CAPTURED)
    debt = wait_for_state(unpaid.payment_id, PaymentState.OUTSTANDING)

    assert (captured.amount, captured.captured_amount) == (Decimal("10.00"), Decimal("10.00"))
    assert (debt.amount, debt.captured_amount) == (Decimal("10.00"), Decimal("0.00"))
    figures = dashboard_for(user=SuperuserFactory(), now=timezone.now()).parkings
    assert [row.revenue_today for row in figures if row.parking == parking] == [Decimal("10.00")]


def test_revenue_is_added_up_per_currency(operator):
    lei = SecuredParkingFactory(operator=operator, currency="RON")
    euro = SecuredParkingFactory(operator=operator, currency="EUR")
    paid_session_at(lei, NOW - timedelta(hours=2), "5.00", captured="5.00")
    paid_session_at(euro, NOW - timedelta(hours=2), "3.00", captured="3.00")

    dashboard = dashboard_for(user=SuperuserFactory(), now=NOW)

    assert dashboard.revenue_today == {"RON": Decimal("5.00"), "EUR": Decimal("3.00")}


def test_staff_see_only_their_operators_parkings(operator, parking):
    theirs = SecuredParkingFactory(operator=OperatorFactory(), name="Theirs")
    ParkingSessionFactory(secured_parking=theirs)

    response = staff_client(operator).get(DASHBOARD)

    assert response.status_code == 200
    assert [row.parking for row in response.context["dashboard"].parkings] == [parking]
    assert "Theirs" not in response.content.decode()


def test_the_page_draws_the_charts_as_inline_svg_with_nothing_loaded_from_elsewhere(
    operator, parking
):
    ParkingSessionFactory(secured_parking=parking)

    page = staff_client(operator).get(DASHBOARD).content.decode()

    assert page.count('class="hourly-chart"') == 2  # all parkings, and Gara
    assert len(re.findall(r'<rect class="bar"', page)) == 2 * HOURS
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_the_dashboard_costs_the_same_queries_for_one_parking_and_for_five(operator, parking):
    client = staff_client(operator)
    ParkingSessionFactory(secured_parking=parking)
    with CaptureQueriesContext(connection) as one:
        assert client.get(DASHBOARD).status_code == 200
    for _ in range(4):
        ParkingSessionFactory(secured_parking=SecuredParkingFactory(operator=operator))

    with CaptureQueriesContext(connection) as five:
        response = client.get(DASHBOARD)

    assert len(response.context["dashboard"].parkings) == 5
    assert len(five.captured_queries) == len(one.captured_queries)


def test_staff_of_no_operator_get_an_empty_dashboard(operator):
    client = staff_client(operator)
    operator.memberships.all().delete()

    response = client.get(DASHBOARD)

    assert response.context["dashboard"].parkings == []
    assert "not staff of an operator" in response.content.decode()


@pytest.mark.parametrize("who", ["anonymous", "driver"])
def test_only_staff_reach_the_dashboard(client, who):
    if who == "driver":
        client.force_login(DriverFactory())

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_the_admin_home_links_to_the_dashboard(operator):
    page = staff_client(operator).get(reverse("admin:index")).content.decode()

    assert f'href="{DASHBOARD}"' in page
