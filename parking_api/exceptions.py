"""One error format for every API answer from 400 to 503, and where domain errors become HTTP.

The format is drf-standardized-errors' (documented in the OpenAPI schema):
``{"type": "client_error", "errors": [{"code": "…", "detail": "…", "attr": null}]}``,
with ``type`` one of ``validation_error``, ``client_error``, ``server_error`` and, for
validation errors, one entry per field (``attr`` names it). Some domain errors add
top-level members, e.g. ``parking_session_id`` on ``open_session_exists``.

Answers produced outside DRF views (unknown URLs, Django-level errors, middleware
refusals) use the same shape through :func:`error_response`.
"""

from typing import TYPE_CHECKING, Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler
from drf_standardized_errors.types import ErrorResponse
from rest_framework import exceptions, status

from core.errors import DomainError
from parking.idempotency import IdempotencyKeyReused
from smart_keys.exceptions import BarrierGatewayFailure, BarrierGatewayTimeout

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# The driver API and the OAuth endpoints: their clients are apps, so every answer is JSON.
JSON_ONLY_PREFIXES = ("/api/", "/o/")
DATABASE_RETRY_AFTER_SECONDS = 5


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The resource's current state does not allow this.")
    default_code = "conflict"

    def __init__(
        self, detail: "StrOrPromise", code: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, code)
        self.extra = extra or {}


class UnprocessableEntity(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("The request cannot be processed.")
    default_code = "unprocessable_entity"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The service is temporarily unavailable; try again shortly.")
    default_code = "service_unavailable"

    def __init__(self) -> None:
        super().__init__()
        self.wait = DATABASE_RETRY_AFTER_SECONDS


class BarrierGatewayFailed(exceptions.APIException):
    """The parking's barrier gateway did not confirm an opening: 502, or 504 on a timeout."""

    status_code: int = status.HTTP_502_BAD_GATEWAY
    default_code = "barrier_gateway_error"

    def __init__(self, failure: BarrierGatewayFailure) -> None:
        super().__init__(failure.message, failure.code)
        if isinstance(failure, BarrierGatewayTimeout):
            self.status_code = status.HTTP_504_GATEWAY_TIMEOUT
        self.extra = failure.details


def answers_json(request: HttpRequest) -> bool:
    return request.path_info.startswith(JSON_ONLY_PREFIXES)


def is_database_outage(exc: BaseException) -> bool:
    # OperationalError/InterfaceError are the driver's "cannot talk to the server" family;
    # programming and integrity errors stay 500s, they are bugs, not outages.
    return isinstance(exc, OperationalError | InterfaceError)


class ApiExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, BarrierGatewayFailure):
            return BarrierGatewayFailed(exc)
        if isinstance(exc, DomainError):
            return Conflict(exc.message, exc.code, exc.details)
        if isinstance(exc, IdempotencyKeyReused):
            return UnprocessableEntity(str(exc), "idempotency_key_reused")
        if is_database_outage(exc):
            return ServiceUnavailable()
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc: exceptions.APIException, response) -> None:
        # A gateway or database outage is a state of the world, answered on purpose with
        # 502/503/504; only real crashes (500) go to error reporting as exceptions.
        if exc.status_code == status.HTTP_500_INTERNAL_SERVER_ERROR:
            super().report_exception(exc, response)


class ApiExceptionFormatter(ExceptionFormatter):
    def format_error_response(self, error_response: ErrorResponse) -> dict:
        body = super().format_error_response(error_response)
        body.update(getattr(self.exc, "extra", {}))
        return body


def error_body(status_code: int, code: str, detail: str) -> dict:
    error_type = "client_error" if status_code < 500 else "server_error"
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}


def error_response(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    response = JsonResponse(error_body(status_code, code, detail), status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    # Made outside the view, often above CommonMiddleware, which would otherwise add it.
    response["Content-Length"] = str(len(response.content))
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Unknown URLs answer JSON under /api/ and /o/, the usual page elsewhere."""
    if answers_json(request):
        return error_response(status.HTTP_404_NOT_FOUND, "not_found", gettext("Not found."))
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if answers_json(request):
        return error_response(status.HTTP_400_BAD_REQUEST, "bad_request", gettext("Bad request."))
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if answers_json(request):
        return error_response(
            status.HTTP_403_FORBIDDEN,
            "permission_denied",
            gettext("You do not have permission to perform this action."),
        )
    return defaults.permission_denied(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if answers_json(request):
        return error_response(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "error", gettext("A server error occurred.")
        )
    return defaults.server_error(request)
