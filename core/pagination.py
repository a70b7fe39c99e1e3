from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from core.paginators import CappedCountPaginator

Row = TypeVar("Row")


class PagePagination(PageNumberPagination):
    """``?page=N&page_size=M``: 20 per page by default, never more than 100.

    ``count`` stops at ``CappedCountPaginator.count_limit`` (10,000): a driver's history
    grows for years, and a page must not cost a count of all of it. Past the cap the pages
    cover the newest 10,000."""

    django_paginator_class = CappedCountPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(
        self,
        queryset: QuerySet[Any, Row] | Sequence[Row],
        request: Request,
        view: APIView | None = None,
    ) -> list[Row]:
        page = super().paginate_queryset(queryset, request, view)
        assert page is not None  # DRF's None means "no page size", and there always is one
        return page

    def get_page_number(self, request, paginator) -> int | str:
        # DRF reads an empty ?page= as page 1; it names no page, like ?page=x: 404.
        page_number = request.query_params.get(self.page_query_param, 1)
        if page_number in self.last_page_strings:
            return paginator.num_pages
        return page_number

    def get_page_size(self, request) -> int:
        # DRF quietly falls back to the default on a malformed page_size; a client that
        # asked for something it cannot have should hear so. Over the cap is not an error.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError(
                {self.page_size_query_param: [_("A positive integer is required.")]}
            )
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_query_param:
                parameter["description"] = "Page number, from 1; a page past the last is 404."
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; more than "
                    f"{self.max_page_size} gives {self.max_page_size})."
                )
        return parameters

    def get_paginated_response_schema(self, schema: dict) -> dict:
        # DRF's is OpenAPI 3.0 (`nullable`); in 3.1 null is a type. Every member is always
        # there.
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "minimum": 0,
                    "description": f"How many there are, counted up to "
                    f"{CappedCountPaginator.count_limit}; past that, the pages cover the first "
                    "ones.",
                },
                "next": {**link, "description": "The next page; null on the last."},
                "previous": {**link, "description": "The previous page; null on the first."},
                "results": schema,
            },
        }
