"""A finished session's receipt: who sold what, when, at which tariff, for how much, VAT
included, and how it was paid. One function builds it; the JSON and the printable page
both show it."""

from decimal import Decimal
from typing import Any

from core.datetimes import iso_seconds
from parking.models import CENT, ParkingSession, Tariff, TariffTerms
from payments.models import Refund


def receipt_for(session: ParkingSession) -> dict[str, Any]:
    """The receipt of a finished session (loaded with its parking, operator and payment);
    an open session has none (its amount is not fixed)."""
    parking = session.secured_parking
    operator = parking.operator
    vat = session.vat_amount
    return {
        "number": f"{session.pk:08d}",
        "issued_at": iso_seconds(session.end_time),
        "operator": {
            "name": operator.name if operator else "",
            "legal_name": (operator.legal_name or operator.name) if operator else "",
            "tax_id": operator.tax_id if operator else "",
        },
        "secured_parking": {"id": parking.pk, "name": parking.name, "address": parking.address},
        "parking_session_id": session.pk,
        "start_time": iso_seconds(session.start_time),
        "end_time": iso_seconds(session.end_time),
        "tariff": session.tariff_terms,
        "tariff_summary": _tariff_summary(session),
        "currency": session.currency,
        "amount": _money(session.amount),
        "vat_rate": str(session.vat_rate) if session.vat_rate is not None else None,
        "vat_amount": _money(vat),
        "amount_without_vat": _money(session.amount - vat),
        "payment": _payment(session),
    }


def _tariff_summary(session: ParkingSession) -> str:
    if session.tariff_terms is None:
        return ""
    terms = TariffTerms.from_json(session.tariff_terms)
    agreed = Tariff(
        secured_parking=session.secured_parking,
        free_minutes=terms.free_minutes,
        period_minutes=terms.period_minutes,
        price_per_period=terms.price_per_period,
        daily_cap=terms.daily_cap,
    )
    return agreed.summary


def _payment(session: ParkingSession) -> dict[str, Any] | None:
    payment = session.payment
    if payment is None:
        return None
    return {
        "state": payment.state,
        "reference": payment.hold_reference,
        "captured_amount": _money(payment.captured_amount),
        "captured_vat_amount": _money(session.vat_included_in(payment.captured_amount)),
        "refunded_amount": _money(payment.refunded_amount),
        "outstanding_amount": _money(payment.outstanding_amount),
        "refunds": [_refund(session, refund) for refund in payment.refunds_made],
    }


def _refund(session: ParkingSession, refund: Refund) -> dict[str, Any]:
    """A refund, VAT included: the receipt's amount is what was captured less the refunds,
    and its VAT that of the capture less the refunds' (ParkingSession.vat_given_back)."""
    assert refund.kept_after is not None and refund.refunded_at is not None  # succeeded
    return {
        "amount": _money(refund.amount),
        "vat_amount": _money(
            session.vat_given_back(amount=refund.amount, kept_after=refund.kept_after)
        ),
        "refunded_at": iso_seconds(refund.refunded_at),
        "reference": refund.provider_reference,
    }


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))
