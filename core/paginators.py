"""Paginators for tables that grow by the million (sessions, smart keys, the access log)."""

from functools import cached_property
from typing import Any

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models import QuerySet


class CappedCountPaginator(Paginator):
    """Counts at most ``count_limit`` rows, so no page costs a ``COUNT(*)`` of a huge table.

    The count is ``SELECT COUNT(*) FROM (… LIMIT count_limit + 1)``: bounded however many
    rows match. Past the limit the list pages through its first ``count_limit`` rows and
    says "more than"; filters and search narrow it. Unlike an estimate from the planner's
    statistics it stays exact for small results and respects operator scoping and filters.
    """

    object_list: QuerySet[Any]  # pages through querysets only
    count_limit = 10_000

    @cached_property
    def counted(self) -> int:
        # Unordered: which rows fill the cap does not change how many there are. Only the
        # keys: a sliced count keeps the select list, and annotations the count does not
        # need (a parking's occupancy) would run for every row counted.
        return self.object_list.order_by().values("pk")[: self.count_limit + 1].count()

    @property
    def count_is_capped(self) -> bool:
        return self.counted > self.count_limit

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.count_limit)


def wanted_page(paginator: Paginator, number: int | str) -> int:
    """The page number asked for, refused before any query when it is none, or lies past
    ``CappedCountPaginator.count_limit``: no page exists there however many rows there are,
    and no query gets an OFFSET beyond what PostgreSQL takes."""
    try:
        wanted = int(number)
    except (TypeError, ValueError):
        raise PageNotAnInteger(paginator.error_messages["invalid_page"]) from None
    if wanted < 1:
        raise EmptyPage(paginator.error_messages["min_page"])
    if wanted > 1 and (wanted - 1) * paginator.per_page >= CappedCountPaginator.count_limit:
        raise EmptyPage(paginator.error_messages["no_results"])
    return wanted
