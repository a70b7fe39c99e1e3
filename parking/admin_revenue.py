"""The back office's revenue export: a CSV of revenue per day and parking for accounting
(parking.revenue), linked from the session list, scoped like every admin page."""

import csv
from datetime import date

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext, pgettext

from accounts.authentication import AuthenticatedHttpRequest
from core.admin import staff_parking_ids
from parking.forms import RevenueExportForm
from parking.revenue import ACCOUNTING_TIME_ZONE, RevenueRow, revenue_per_day

# Spreadsheets (Excel above all) read a CSV as UTF-8 only when it starts with the BOM.
BYTE_ORDER_MARK = "\ufeff"


def revenue_export_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The form (this month so far by default) and, once it is filled, the CSV: the
    superuser's of every parking, a staff member's of their operator's parkings."""
    if not request.user.has_perm("parking.view_parkingsession"):
        raise PermissionDenied
    form = RevenueExportForm(request.GET if "first_day" in request.GET else None)
    if form.is_valid():
        first, last = form.cleaned_data["first_day"], form.cleaned_data["last_day"]
        parkings = None if request.user.is_superuser else staff_parking_ids(request)
        rows = revenue_per_day(parking_ids=parkings, first_day=first, last_day=last)
        return _csv(rows, first, last)
    if not form.is_bound:
        today = timezone.localdate(timezone=ACCOUNTING_TIME_ZONE)
        form = RevenueExportForm(initial={"first_day": today.replace(day=1), "last_day": today})
    context = {
        **admin.site.each_context(request),
        "title": gettext("Revenue per day and parking"),
        "form": form,
    }
    return TemplateResponse(request, "admin/parking/revenue_export.html", context)


def _csv(rows: list[RevenueRow], first: date, last: date) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="revenue-{first}-{last}.csv"'
    response.write(BYTE_ORDER_MARK)
    writer = csv.writer(response)
    writer.writerow(
        [
            gettext("Date"),
            gettext("Parking"),
            gettext("Currency"),
            gettext("Captured"),
            pgettext("revenue column", "Refunded"),
            gettext("Net"),
            gettext("VAT included in net"),
            gettext("Sessions"),
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.day.isoformat(),
                row.parking,
                row.currency,
                row.captured,
                row.refunded,
                row.net,
                row.vat,
                row.sessions,
            ]
        )
    return response
