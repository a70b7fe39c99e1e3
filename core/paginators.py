"""Paginators for tables that grow by the million (sessions, smart keys, the access log)."""

from functools import cached_property
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Count, QuerySet, Window


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


class CountedWithPagePaginator(CappedCountPaginator):
    """For lists as long as what operators create (the parkings), not as long as use makes
    them: the count comes with the page's rows, ``COUNT(*) OVER ()`` in the page's own
    statement, so a page is one statement rather than a count and a page. The window counts
    every matching row; PostgreSQL still runs the select list's subqueries (a parking's
    occupancy) only for the rows up to the page's end."""

    def page(self, number: int | str) -> Page:
        wanted = wanted_page(self, number)
        offset = (wanted - 1) * self.per_page
        rows = list(
            self.object_list.annotate(listed_count=Window(Count("*")))[
                offset : offset + self.per_page
            ]
        )
        if rows or wanted == 1:
            self.__dict__["counted"] = rows[0].listed_count if rows else 0
        # Past the last page Django's check refuses it, as on every list (an empty page past
        # the end counts apart, to say so).
        return Page(rows, self.validate_number(wanted), self)
