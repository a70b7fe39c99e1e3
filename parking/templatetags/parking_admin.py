"""Admin template tags for lists too large for Django's defaults."""

import calendar
from datetime import date, datetime

from django import template
from django.contrib.admin.templatetags.admin_list import pagination
from django.contrib.admin.views.main import ChangeList
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext

register = template.Library()


@register.inclusion_tag("admin/capped_pagination.html")
def capped_pagination(cl: ChangeList) -> dict:
    """Django's page links, and "more than N" when ``CappedCountPaginator`` stopped counting."""
    return pagination(cl)


@register.inclusion_tag("admin/date_hierarchy.html")
def bounded_date_hierarchy(cl: ChangeList) -> dict:
    """Django's date drill-down without its ``SELECT DISTINCT`` over every listed row.

    The choices span the first to the last date of the list as it is filtered, read with
    two ``ORDER BY … LIMIT 1`` queries an index answers at once; a period in between with
    no rows still gets its link (and lists nothing).
    """
    field = cl.date_hierarchy
    year, month, day = (cl.params.get(f"{field}__{part}") for part in ("year", "month", "day"))

    def link(filters: dict) -> str:
        return cl.get_query_string(filters, [f"{field}__"])

    if year and month and day:
        chosen = date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({f"{field}__year": year, f"{field}__month": month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    span = _first_and_last(cl.queryset, field)
    if span is None:
        return {"show": True, "back": None, "choices": []}
    first, last = span
    if not year and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month:
        return _days(int(year), int(month), first, last, field, link)
    if year:
        return _months(int(year), first, last, field, link)
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({f"{field}__year": str(y)}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }


def _first_and_last(queryset, field: str) -> tuple[datetime, datetime] | None:
    dates = queryset.values_list(field, flat=True)
    first = dates.order_by(field).first()
    last = dates.order_by(f"-{field}").first()
    if first is None or last is None:
        return None
    return timezone.localtime(first), timezone.localtime(last)


def _months(year: int, first: datetime, last: datetime, field: str, link) -> dict:
    start = first.month if first.year == year else 1
    end = last.month if last.year == year else 12
    return {
        "show": True,
        "back": {"link": link({}), "title": gettext("All dates")},
        "choices": [
            {
                "link": link({f"{field}__year": year, f"{field}__month": month}),
                "title": capfirst(formats.date_format(date(year, month, 1), "YEAR_MONTH_FORMAT")),
            }
            for month in range(start, end + 1)
        ],
    }


def _days(year: int, month: int, first: datetime, last: datetime, field: str, link) -> dict:
    in_month = (first.year, first.month) == (year, month)
    start = first.day if in_month else 1
    end = (
        last.day
        if (last.year, last.month) == (year, month)
        else calendar.monthrange(year, month)[1]
    )
    return {
        "show": True,
        "back": {"link": link({f"{field}__year": year}), "title": str(year)},
        "choices": [
            {
                "link": link(
                    {f"{field}__year": year, f"{field}__month": month, f"{field}__day": d}
                ),
                "title": capfirst(formats.date_format(date(year, month, d), "MONTH_DAY_FORMAT")),
            }
            for d in range(start, end + 1)
        ],
    }
