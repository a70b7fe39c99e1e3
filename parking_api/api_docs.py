"""Swagger UI at /api/docs/, signing in as the docs' own OAuth client when
``API_DOCS_SIGN_IN`` is on: authorization code + PKCE in a popup, back through
/api/docs/oauth2-redirect.html, the redirect URI that client has registered.

Swagger UI reads the answer from the popup through ``window.opener``; any page or redirect
of that popup sent with Django's ``Cross-Origin-Opener-Policy: same-origin`` would cut it
off, so those are sent with ``unsafe-none``; every other page keeps the strict policy."""

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.templatetags.static import static
from django.utils.html import escape
from django.views import View
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView

KEEP_OPENER = "unsafe-none"
AUTHORIZE_PATH = "/o/authorize/"
LOGIN_PATH = "/accounts/login/"


def oauth2_config() -> dict[str, object]:
    """Swagger UI's ``initOAuth``: the public docs client, PKCE, the driver scope."""
    return {
        "clientId": settings.API_DOCS_CLIENT_ID,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "driver",
        "appName": "Secured Parking API docs",
    }


class ApiDocsView(SpectacularSwaggerView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        # Without sign-in no client id is filled in, for a client that does not exist; the
        # bearer scheme takes a pasted token.
        response.data["oauth2_config"] = (
            json.dumps(oauth2_config()) if settings.API_DOCS_SIGN_IN else ""
        )
        return response


class ApiDocsOAuthRedirectView(View):
    """Swagger UI's oauth2-redirect page: hands the authorization response (``code``,
    ``state``, ``iss``) to the docs window that opened the sign-in."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.API_DOCS_SIGN_IN:
            raise Http404
        script = escape(static("drf_spectacular_sidecar/swagger-ui-dist/oauth2-redirect.js"))
        response = HttpResponse(
            f'<!doctype html>\n<html lang="en"><title>Signing in</title><body>'
            f'<script src="{script}"></script></body></html>\n'
        )
        response["Cross-Origin-Opener-Policy"] = KEEP_OPENER
        return response


class ApiDocsPopupMiddleware:
    """Sends the pages and redirects of the docs' sign-in popup (the authorization endpoint
    for the docs' client, the login page on its way) without the opener policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.API_DOCS_SIGN_IN and _in_the_docs_popup(request):
            # Before SecurityMiddleware's answer passes, which only sets a missing one.
            response["Cross-Origin-Opener-Policy"] = KEEP_OPENER
        return response


def _in_the_docs_popup(request: HttpRequest) -> bool:
    if request.path_info == AUTHORIZE_PATH:
        authorization_request = request.get_full_path()
    elif request.path_info == LOGIN_PATH:
        authorization_request = request.POST.get("next") or request.GET.get("next") or ""
    else:
        return False
    query = parse_qs(urlsplit(authorization_request).query)
    return query.get("client_id") == [settings.API_DOCS_CLIENT_ID]
