"""Pages read with their count in one statement (the history,
``parking.selectors.driver_history_page``; the parking list, ``parking_list_page``), in the
page format of every list."""

from functools import cached_property
from typing import Any, Protocol

from django.core.paginator import InvalidPage, Page, Paginator
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from core.pagination import PagePagination
from core.paginators import CappedCountPaginator, wanted_page


class PageRead(Protocol):
    """Rows ``offset`` to ``offset + limit`` and how many there are, counted up to
    ``count_limit`` + 1."""

    def __call__(self, *, limit: int, offset: int, count_limit: int) -> tuple[list[Any], int]: ...


class PageReadPaginator(Paginator):
    """Django's paginator over a ``PageRead``, counted up to
    ``CappedCountPaginator.count_limit`` as every list is, the count read with the page."""

    def __init__(self, read: PageRead, per_page: int) -> None:
        super().__init__((), per_page)
        self.read = read

    @cached_property
    def count(self) -> int:
        # Asked before a page only for ?page=last; a page sets it with its rows.
        return self._read(limit=0, offset=0)[1]

    def page(self, number: int | str) -> Page:
        wanted = wanted_page(self, number)
        rows, self.__dict__["count"] = self._read(
            limit=self.per_page, offset=(wanted - 1) * self.per_page
        )
        # Past the last page (or the cap) Django's check refuses it, as on every list.
        return Page(rows, self.validate_number(wanted), self)

    def _read(self, *, limit: int, offset: int) -> tuple[list[Any], int]:
        count_limit = CappedCountPaginator.count_limit
        rows, counted = self.read(limit=limit, offset=offset, count_limit=count_limit)
        return rows, min(counted, count_limit)


class PageReadPagination(PagePagination):
    def paginate_read(self, read: PageRead, request: Request) -> list[Any]:
        """DRF's ``paginate_queryset``, over ``PageReadPaginator``."""
        self.request = request
        paginator = PageReadPaginator(read, self.get_page_size(request))
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as error:
            message = self.invalid_page_message.format(page_number=page_number, message=error)
            raise NotFound(message) from error
        return list(self.page)
