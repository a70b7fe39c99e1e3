"""Admin lists over tables that grow by the million: sessions, smart keys, the access log.

Django's defaults cost a full scan per page view on such a table: a ``COUNT(*)`` for the
pages, another for "N total", facet counts, and a ``SELECT DISTINCT`` of the dates for
the date drill-down. ``LargeTableAdmin`` turns each of them off or bounds it.
"""

from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet


class CappedCountPaginator(Paginator):
    """Counts at most ``count_limit`` rows, so no page costs a ``COUNT(*)`` of a huge table.

    The count is ``SELECT COUNT(*) FROM (… LIMIT count_limit + 1)``: bounded however many
    rows match. Past the limit the list pages through its first ``count_limit`` rows and
    says "more than"; filters and search narrow it. Unlike an estimate from the planner's
    statistics it stays exact for small results and respects operator scoping and filters.
    """

    object_list: QuerySet[Any]  # the admin pages through querysets only
    count_limit = 10_000

    @cached_property
    def counted(self) -> int:
        # Unordered: which rows fill the cap does not change how many there are.
        return self.object_list.order_by()[: self.count_limit + 1].count()

    @property
    def count_is_capped(self) -> bool:
        return self.counted > self.count_limit

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.count_limit)


class LargeTableAdmin(admin.ModelAdmin):
    """A base of the ModelAdmin of a table that may hold millions of rows."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    show_facets = admin.ShowFacets.NEVER
    # Its date drill-down reads two rows instead of every distinct date, and its page
    # count says "more than" past the cap.
    change_list_template = "admin/large_table_change_list.html"
