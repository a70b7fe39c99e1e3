"""One place where domain errors become HTTP answers, and where every API error is JSON."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from parking.exceptions import ParkingError
from parking.idempotency import IdempotencyKeyReused

API_PREFIXES = ("/api/", "/o/")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ParkingError):
        body = {"detail": exc.message, "code": exc.code, **exc.details}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IdempotencyKeyReused):
        body = {"detail": str(exc), "code": "idempotency_key_reused"}
        return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    return exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Unknown URLs answer JSON under /api/ and /o/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(
            {"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return defaults.server_error(request)
