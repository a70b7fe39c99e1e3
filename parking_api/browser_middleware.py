"""Django's browser middleware, skipped for the bearer-token API under ``/api/``.

Sessions, Django logins, flash messages, static files and slash redirects serve the
admin, the login form and the OAuth authorization pages. Requests under /api/
authenticate with a bearer token and use none of them, and the app sends them far more
often than anything else (``GET current`` on every launch). Everywhere else, /o/
included, they run as usual. CSRF protection stays Django's own, for every path.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware

from parking_api.exceptions import API_PATH_PREFIX


class SkippedForApi:
    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class BrowserWhiteNoiseMiddleware(SkippedForApi, WhiteNoiseMiddleware):
    pass


class BrowserSessionMiddleware(SkippedForApi, SessionMiddleware):
    pass


class BrowserCommonMiddleware(SkippedForApi, CommonMiddleware):
    pass


class BrowserAuthenticationMiddleware(SkippedForApi, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(SkippedForApi, MessageMiddleware):
    pass
