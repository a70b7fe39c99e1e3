"""The back-office dashboard: per parking, occupancy now, today's sessions and revenue,
and sessions started per hour over the last day, drawn server-side."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from parking.dashboard import HOURS, dashboard_for
from parking.models import State
from tests.back_office import staff_client
from tests.factories import (
    DriverFactory,
    OperatorFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    SuperuserFactory,
)

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


def test_the_dashboard_counts_open_sessions_today_and_revenue(operator, parking):
    session_at(parking, NOW - timedelta(minutes=5), State.ENTERING)
    session_at(parking, NOW - timedelta(hours=3), State.ACTIVE)
    session_at(parking, NOW - timedelta(hours=20), State.EXITING, amount="7.00")
    session_at(parking, NOW - timedelta(hours=2), State.ENTERING)  # past its deadline
    session_at(parking, NOW - timedelta(hours=2), amount="5.00")  # finished today
    session_at(parking, NOW - timedelta(hours=4), amount="2.50")  # finished today
    session_at(parking, NOW - timedelta(days=1, hours=2), amount="9.00")  # finished yesterday
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


def test_revenue_is_added_up_per_currency(operator):
    lei = SecuredParkingFactory(operator=operator, currency="RON")
    euro = SecuredParkingFactory(operator=operator, currency="EUR")
    session_at(lei, NOW - timedelta(hours=2), amount="5.00")
    session_at(euro, NOW - timedelta(hours=2), amount="3.00")

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
