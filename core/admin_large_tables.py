"""Admin lists over tables that grow by the million: sessions, smart keys, the access log.

Django's defaults cost a full scan per page view on such a table: a ``COUNT(*)`` for the
pages, another for "N total", facet counts, and a ``SELECT DISTINCT`` of the dates for
the date drill-down. ``LargeTableAdmin`` turns each of them off or bounds it.
"""

from django.contrib import admin

from core.paginators import CappedCountPaginator


class LargeTableAdmin(admin.ModelAdmin):
    """A base of the ModelAdmin of a table that may hold millions of rows."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    show_facets = admin.ShowFacets.NEVER
    # Its date drill-down reads two rows instead of every distinct date, and its page
    # count says "more than" past the cap.
    change_list_template = "admin/large_table_change_list.html"
