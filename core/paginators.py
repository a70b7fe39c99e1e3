"""Paginators for tables that grow by the million (sessions, smart keys, the access log)."""

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
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
