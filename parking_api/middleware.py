from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from parking_api.exceptions import API_PREFIXES


class NoStoreApiResponsesMiddleware:
    """API answers carry personal data and credentials: no cache may keep them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(API_PREFIXES):
            response["Cache-Control"] = "no-store"
        return response
