"""Revenue per day and parking, for accounting: what card payments captured, what was refunded,
and the VAT included, summed in SQL with exact decimals.

A payment counts on the day it was taken in full (``captured_at``: the capture, or its debt
settled) and a refund on the day Stripe made it (``refunded_at``), each a Europe/Bucharest
day. The VAT of a capture is that included in it at its session's rate, rounded half-up to
the ban; the VAT a refund gives back is the VAT of what the payment kept before it less that
of what it kept after (``Refund.kept_after``), as on the receipt, so a day's figures add up
to the receipts' and nothing is lost to rounding."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce, Round, TruncDate

from parking.models import ParkingSession, SecuredParking
from payments.models import Refund, RefundState

# Romania's: the day an accountant means.
ACCOUNTING_TIME_ZONE = ZoneInfo("Europe/Bucharest")
MONEY = DecimalField(max_digits=12, decimal_places=2)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RevenueRow:
    day: date
    parking: str
    currency: str
    captured: Decimal
    refunded: Decimal
    # Included in ``net``: that of the captures less that of the refunds.
    vat: Decimal
    # Sessions whose payment was taken in full that day.
    sessions: int

    @property
    def net(self) -> Decimal:
        return self.captured - self.refunded


def vat_included(amount: Combinable, rate: Combinable) -> Round:
    """SQL for the VAT included in ``amount`` at ``rate`` (none without a rate), rounded
    half-up to the ban: ParkingSession.vat_included_in's rule (PostgreSQL's ROUND of a
    positive numeric rounds half up)."""
    rate = Coalesce(rate, Value(ZERO))
    return Round(
        ExpressionWrapper(amount * rate / (Value(Decimal(1)) + rate), output_field=MONEY),
        precision=2,
        output_field=MONEY,
    )


def revenue_per_day(
    *, parking_ids: list[int] | None, first_day: date, last_day: date
) -> list[RevenueRow]:
    """Each (day, parking, currency) from ``first_day`` to ``last_day`` (both included) with
    money captured or refunded, in order; ``parking_ids`` narrows it to those parkings (the
    caller's), ``None`` takes every parking. Three queries, however many rows."""
    start = datetime.combine(first_day, time.min, ACCOUNTING_TIME_ZONE)
    end = datetime.combine(last_day + timedelta(days=1), time.min, ACCOUNTING_TIME_ZONE)
    captures = _captures(start, end, parking_ids)
    refunds = _refunds(start, end, parking_ids)
    keys = sorted(set(captures) | set(refunds))
    names = dict(
        SecuredParking.objects.filter(pk__in={key[1] for key in keys}).values_list("pk", "name")
    )
    rows = []
    for key in keys:
        day, parking_id, currency = key
        captured, captured_vat, sessions = captures.get(key, (ZERO, ZERO, 0))
        refunded, refunded_vat = refunds.get(key, (ZERO, ZERO))
        rows.append(
            RevenueRow(
                day=day,
                parking=names[parking_id],
                currency=currency,
                captured=captured,
                refunded=refunded,
                vat=captured_vat - refunded_vat,
                sessions=sessions,
            )
        )
    return sorted(rows, key=lambda row: (row.day, row.parking, row.currency))


def net_per_parking(
    *, parking_ids: list[int] | None, start: datetime, end: datetime
) -> dict[int, Decimal]:
    """What card payments took from ``start`` to ``end``, less what was refunded in it, per
    parking id, by the same rule as the days above (the dashboard's revenue today). Two
    queries."""
    net: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for (_day, parking_id, _currency), (captured, _vat, _sessions) in _captures(
        start, end, parking_ids
    ).items():
        net[parking_id] += captured
    for (_day, parking_id, _currency), (refunded, _vat) in _refunds(
        start, end, parking_ids
    ).items():
        net[parking_id] -= refunded
    return dict(net)


Key = tuple[date, int, str]


def _captures(
    start: datetime, end: datetime, parking_ids: list[int] | None
) -> dict[Key, tuple[Decimal, Decimal, int]]:
    sessions = ParkingSession.objects.filter(
        payment__captured_at__gte=start, payment__captured_at__lt=end
    )
    if parking_ids is not None:
        sessions = sessions.filter(secured_parking__in=parking_ids)
    totals = (
        sessions.order_by()
        .values(
            day=TruncDate("payment__captured_at", tzinfo=ACCOUNTING_TIME_ZONE),
            parking=F("secured_parking"),
            money=F("payment__currency"),
        )
        .annotate(
            captured=Sum("payment__captured_amount"),
            vat=Sum(vat_included(F("payment__captured_amount"), F("vat_rate"))),
            sessions=Count("pk"),
        )
    )
    return {
        (row["day"], row["parking"], row["money"]): (row["captured"], row["vat"], row["sessions"])
        for row in totals
    }


def _refunds(
    start: datetime, end: datetime, parking_ids: list[int] | None
) -> dict[Key, tuple[Decimal, Decimal]]:
    refunds = Refund.objects.filter(
        state=RefundState.SUCCEEDED,
        refunded_at__gte=start,
        refunded_at__lt=end,
        payment__parking_session__isnull=False,
    )
    if parking_ids is not None:
        refunds = refunds.filter(payment__parking_session__secured_parking__in=parking_ids)
    rate = F("payment__parking_session__vat_rate")
    totals = (
        refunds.order_by()
        .values(
            day=TruncDate("refunded_at", tzinfo=ACCOUNTING_TIME_ZONE),
            parking=F("payment__parking_session__secured_parking"),
            money=F("payment__currency"),
        )
        .annotate(
            refunded=Sum("amount"),
            vat=Sum(
                vat_included(F("kept_after") + F("amount"), rate)
                - vat_included(F("kept_after"), rate)
            ),
        )
    )
    return {
        (row["day"], row["parking"], row["money"]): (row["refunded"], row["vat"]) for row in totals
    }
