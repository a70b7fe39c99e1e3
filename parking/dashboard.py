"""What the back-office dashboard shows, and the geometry of its server-rendered charts.

The figures are read in a fixed number of queries, grouped by parking,
whatever the number of parkings, and scoped like every admin list.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import User
from parking.models import ParkingSession, SecuredParking
from parking.revenue import net_per_parking
from parking.selectors import back_office_parkings

HOURS = 24
BAR_WIDTH = 10
BAR_GAP = 2
CHART_HEIGHT = 48
LABEL_HEIGHT = 14
LABEL_EVERY_HOURS = 6


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    count: int
    label: str


@dataclass(frozen=True)
class AxisLabel:
    x: int
    text: str


@dataclass(frozen=True)
class BarChart:
    """Sessions started per hour, drawn as SVG bars scaled to the busiest hour."""

    bars: list[Bar]
    axis: list[AxisLabel]
    peak: int
    width: int = HOURS * (BAR_WIDTH + BAR_GAP)
    height: int = CHART_HEIGHT + LABEL_HEIGHT
    bar_width: int = BAR_WIDTH
    baseline: int = CHART_HEIGHT
    label_y: int = CHART_HEIGHT + LABEL_HEIGHT - 2

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)


@dataclass(frozen=True)
class ParkingFigures:
    parking: SecuredParking
    open_sessions: int
    started_today: int
    revenue_today: Decimal
    started_per_hour: BarChart

    @property
    def free_places(self) -> int:
        return max(self.parking.capacity - self.open_sessions, 0)


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    since: datetime
    parkings: list[ParkingFigures]
    started_per_hour: BarChart
    revenue_today: dict[str, Decimal]

    @property
    def open_sessions(self) -> int:
        return sum(figures.open_sessions for figures in self.parkings)

    @property
    def capacity(self) -> int:
        return sum(figures.parking.capacity for figures in self.parkings)

    @property
    def started_today(self) -> int:
        return sum(figures.started_today for figures in self.parkings)


def dashboard_for(*, user: User, now: datetime) -> Dashboard:
    """The dashboard of the parkings ``user`` runs, as of ``now``, in five queries. Today's
    revenue is what card payments took in full since midnight, less the refunds made since."""
    parkings = list(back_office_parkings(user).with_occupancy(now).order_by("name", "id"))
    sessions = ParkingSession.objects.filter(secured_parking_id__in=[p.pk for p in parkings])
    local_now = timezone.localtime(now)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    this_hour = local_now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]

    started_today = _per_parking(sessions.filter(start_time__gte=midnight), Count("id"))
    # Money taken, not the amounts sessions computed: a debt is not revenue, a refund takes
    # it back; the accounting export's rule (parking.revenue), over today so far.
    revenue = net_per_parking(
        parking_ids=[p.pk for p in parkings], start=midnight, end=midnight + timedelta(days=1)
    )
    hourly = _started_per_parking_and_hour(sessions, since=hours[0])

    figures = [
        ParkingFigures(
            parking=parking,
            open_sessions=parking.occupied_places,
            started_today=started_today.get(parking.pk, 0),
            revenue_today=revenue.get(parking.pk) or Decimal("0.00"),
            started_per_hour=bar_chart(hours, [hourly[parking.pk][hour] for hour in hours]),
        )
        for parking in parkings
    ]
    totals = [sum(hourly[parking.pk][hour] for parking in parkings) for hour in hours]
    revenue_by_currency: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for item in figures:
        revenue_by_currency[item.parking.currency] += item.revenue_today
    return Dashboard(
        now=now,
        since=hours[0],
        parkings=figures,
        started_per_hour=bar_chart(hours, totals),
        revenue_today=dict(revenue_by_currency),
    )


def _per_parking(sessions: QuerySet[ParkingSession], aggregate: Count) -> dict[int, Any]:
    rows = sessions.order_by().values("secured_parking_id").annotate(value=aggregate)
    return {row["secured_parking_id"]: row["value"] for row in rows}


def _started_per_parking_and_hour(
    sessions: QuerySet[ParkingSession], *, since: datetime
) -> dict[int, dict[datetime, int]]:
    rows = (
        sessions.filter(start_time__gte=since)
        .annotate(hour=TruncHour("start_time"))
        .order_by()
        .values("secured_parking_id", "hour")
        .annotate(started=Count("id"))
    )
    counts: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[row["secured_parking_id"]][row["hour"]] = row["started"]
    return counts


def bar_chart(hours: list[datetime], counts: list[int]) -> BarChart:
    """Bars for ``counts`` (one per hour in ``hours``), the tallest filling the chart."""
    peak = max(counts, default=0)
    bars = []
    for index, (hour, count) in enumerate(zip(hours, counts, strict=True)):
        # A busy chart must not hide a quiet hour that had any session at all: 1px at least.
        height = max(round(count * CHART_HEIGHT / peak), 1) if count else 0
        bars.append(
            Bar(
                x=index * (BAR_WIDTH + BAR_GAP),
                y=CHART_HEIGHT - height,
                height=height,
                count=count,
                label=f"{hour:%H}:00–{hour + timedelta(hours=1):%H}:00",
            )
        )
    axis = [
        AxisLabel(x=index * (BAR_WIDTH + BAR_GAP), text=f"{hour:%H}:00")
        for index, hour in enumerate(hours)
        if index % LABEL_EVERY_HOURS == 0
    ]
    return BarChart(bars=bars, axis=axis, peak=peak)
