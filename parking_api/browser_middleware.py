"""Django's browser middleware, not run for the bearer-token API under ``/api/``.

Static files, sessions, Django logins and flash messages serve the admin, the login form
and the OAuth authorization pages; requests under /api/ authenticate with a bearer token
and use none of them. Each class here is Django's own with that one difference, so
Django's system checks still find the middleware they look for. CSRF protection and slash
redirects stay Django's own, for every path.
"""

from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

API_PATH_PREFIX = "/api/"


class BrowserOnlyMixin:
    # The app sends GET current on every launch, and these four layers are a measured share
    # of that request's CPU (bench/results.md) for work the API never uses.
    get_response: Any  # set by the middleware class this is mixed into

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]  # the mixed-in middleware's


# WhiteNoise is also a WSGI app; its middleware subclass takes requests, as this one does.
class BrowserWhiteNoiseMiddleware(BrowserOnlyMixin, WhiteNoiseMiddleware):  # type: ignore[misc]
    pass


class BrowserSessionMiddleware(BrowserOnlyMixin, SessionMiddleware):
    pass


class BrowserAuthenticationMiddleware(BrowserOnlyMixin, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(BrowserOnlyMixin, MessageMiddleware):
    pass
