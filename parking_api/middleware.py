import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import status

from core.throttling import AccountRateThrottle, ClientIPRateThrottle, FixedWindowRateThrottle
from parking_api.exceptions import (
    DATABASE_RETRY_AFTER_SECONDS,
    answers_json,
    error_response,
    is_database_outage,
)

request_logger = logging.getLogger("parking_api.requests")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Distinct (language cookie, Accept-Language) pairs whose language pick is remembered; past
# that, the rest are picked on each request.
MAX_LANGUAGE_PICKS = 1000

GetResponse = Callable[[HttpRequest], HttpResponse]


class RequestIdAndLogMiddleware:
    """Tag every request with an id (the caller's ``X-Request-ID`` when it is sane) and log
    one JSON line per request. Only metadata is logged: never headers, bodies or tokens."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if REQUEST_ID_PATTERN.match(offered) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        # DRF puts the authenticated driver on the Django request; an unevaluated lazy user
        # is left alone (evaluating it would cost a query, and fail when the DB is down).
        user = getattr(request, "user", None)
        driver_id = None if type(user) is SimpleLazyObject else getattr(user, "pk", None)
        request_logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "driver_id": driver_id,
            },
        )
        return response


class LanguageMiddleware:
    """Django's LocaleMiddleware for a site without language prefixes in its URLs: activates
    the request's language, as Django picks it (the set_language cookie, else
    Accept-Language, else LANGUAGE_CODE), and names it in ``Content-Language`` with
    ``Vary: Accept-Language``. Django's spends most of its time on URL prefixes this project
    does not use, on every API request (bench/results.md), so it is not used; the pick for a
    (cookie, header) pair is remembered, up to MAX_LANGUAGE_PICKS pairs."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.picks: dict[tuple[str | None, str | None, str], str] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = (
            request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME),
            request.META.get("HTTP_ACCEPT_LANGUAGE"),
            settings.LANGUAGE_CODE,
        )
        language = self.picks.get(key)
        if language is None:
            language = translation.get_language_from_request(request)
            if len(self.picks) < MAX_LANGUAGE_PICKS:
                self.picks[key] = language
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", language)
        return response


class AllowedHostMiddleware:
    """A Host header ``ALLOWED_HOSTS`` does not list is a 400 on every path (JSON under the
    API, through the 400 handler), before anything answers or builds a URL from it. Django
    checks the host only where something asks for it (CommonMiddleware, absolute URLs), so
    without this the answer depended on which code happened to run first."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.get_host()  # raises DisallowedHost
        return self.get_response(request)


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``API_MAX_BODY_BYTES`` (413) under the JSON-only paths,
    before anything reads them."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if answers_json(request):
            refusal = _body_size_refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)


def _body_size_refusal(request: HttpRequest) -> HttpResponse | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(
            status.HTTP_400_BAD_REQUEST, "bad_request", _("Invalid Content-Length header.")
        )
    if length > settings.API_MAX_BODY_BYTES:
        return error_response(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            "request_too_large",
            _("The request body is larger than {limit} bytes.").format(
                limit=settings.API_MAX_BODY_BYTES
            ),
        )
    return None


class NulParameterMiddleware:
    """Refuses a NUL character in any query or form parameter under the JSON-only paths (400).

    PostgreSQL cannot store NUL in text, so a NUL that reaches a lookup is a 500, wherever
    the parameter goes: DOT's views (the code at /o/token/, the challenge, nonce or state
    at /o/authorize/) as much as ours. No parameter of this API has a use for one."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if answers_json(request) and _has_nul(request):
            return error_response(
                status.HTTP_400_BAD_REQUEST,
                "bad_request",
                _("Request parameters must not contain NUL characters."),
            )
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    parameters = [request.GET]
    # Only form bodies (the OAuth endpoints'): reading request.POST parses them, and the
    # API's JSON bodies are not form parameters.
    if request.content_type == "application/x-www-form-urlencoded":
        parameters.append(request.POST)
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for query in parameters
        for key, values in query.lists()
    )


class JsonErrorsMiddleware:
    """Under the JSON-only paths, every error is the API's JSON error: views that are not
    ours (DOT's bare 403s) answer HTML or nothing, and a database
    that cannot be reached answers 503 with ``Retry-After``."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or _is_json(response) or not answers_json(request):
            return response
        # The authorization endpoint is a page for the person in the browser tab; its
        # error page (accounts.oauth_views.AuthorizationView) says what went wrong.
        if request.path_info == AUTHORIZE_PATH and response.status_code == 400:
            return response
        forwarded = ("Allow", "Retry-After", "WWW-Authenticate")
        return error_response(
            response.status_code,
            ERROR_CODES.get(response.status_code, "error"),
            response.reason_phrase,
            {name: response[name] for name in forwarded if name in response},
        )

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if answers_json(request) and is_database_outage(exception):
            return error_response(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "service_unavailable",
                _("The service is temporarily unavailable; try again shortly."),
                {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        return None


class NoStoreMiddleware:
    """API and OAuth answers hold personal data and credentials: no cache keeps them."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if answers_json(request):
            response["Cache-Control"] = "no-store"
        return response


AUTHORIZE_PATH = "/o/authorize/"

ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    503: "service_unavailable",
}


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class SignInThrottleMiddleware:
    """Limits on the login forms (the drivers' and the admin's) and the token endpoint,
    against password and code guessing: per client IP on all three, and per account on the
    password forms. DRF throttles only cover DRF views; these are Django and DOT views."""

    THROTTLED_PATHS = ("/accounts/login/", "/admin/login/", "/o/token/")
    PASSWORD_FORMS = ("/accounts/login/", "/admin/login/")

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # path_info, not path: the URL resolver routes by path_info, so a SCRIPT_NAME
        # prefix must not take a request out of the limit.
        if request.method == "POST" and request.path_info in self.THROTTLED_PATHS:
            throttles: list[FixedWindowRateThrottle] = [ClientIPRateThrottle()]
            if request.path_info in self.PASSWORD_FORMS:
                throttles.append(AccountRateThrottle())
            for throttle in throttles:
                if not throttle.allow_request(request, None):
                    return _throttled(throttle)
        return self.get_response(request)


def _throttled(throttle: FixedWindowRateThrottle) -> HttpResponse:
    wait = max(1, round(throttle.wait() or 1))
    return error_response(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "throttled",
        ngettext(
            "Too many attempts. Try again in {wait} second.",
            "Too many attempts. Try again in {wait} seconds.",
            wait,
        ).format(wait=wait),
        {"Retry-After": str(wait)},
    )
