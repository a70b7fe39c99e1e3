"""The history's pages: each page and the driver's count of sessions in one statement
(``parking.selectors.driver_history_page``), in the page format of every list."""

from functools import cached_property

from django.core.paginator import InvalidPage, Page, Paginator
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from core.pagination import PagePagination
from core.paginators import CappedCountPaginator, wanted_page
from parking.models import ParkingSession
from parking.selectors import driver_history_page


class DriverHistoryPaginator(Paginator):
    """Django's paginator over one driver's sessions, counted up to
    ``CappedCountPaginator.count_limit`` as every list is, the count read with the page."""

    def __init__(self, driver_id: int, per_page: int) -> None:
        super().__init__((), per_page)
        self.driver_id = driver_id

    @cached_property
    def count(self) -> int:
        # Asked before a page only for ?page=last; a page sets it with its rows.
        return self._read(limit=0, offset=0)[1]

    def page(self, number: int | str) -> Page:
        wanted = wanted_page(self, number)
        sessions, self.__dict__["count"] = self._read(
            limit=self.per_page, offset=(wanted - 1) * self.per_page
        )
        # Past the last page (or the cap) Django's check refuses it, as on every list.
        return Page(sessions, self.validate_number(wanted), self)

    def _read(self, *, limit: int, offset: int) -> tuple[list[ParkingSession], int]:
        count_limit = CappedCountPaginator.count_limit
        sessions, counted = driver_history_page(
            self.driver_id, limit=limit, offset=offset, count_limit=count_limit
        )
        return sessions, min(counted, count_limit)


class HistoryPagination(PagePagination):
    def paginate_history(self, driver_id: int, request: Request) -> list[ParkingSession]:
        """DRF's ``paginate_queryset``, over ``DriverHistoryPaginator``."""
        self.request = request
        paginator = DriverHistoryPaginator(driver_id, self.get_page_size(request))
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as error:
            message = self.invalid_page_message.format(page_number=page_number, message=error)
            raise NotFound(message) from error
        return list(self.page)
