import hashlib
import weakref

from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    get_access_token_model,
    get_application_model,
)
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import User
from core.rows import fetch_grouped_row, model_instance, postgresql_database

AccessToken = get_access_token_model()
Application = get_application_model()

# A token without a user (a client-credentials grant) has no row: it signs no driver in.
# Each column is named "<model>.<field>"; resource is read as json, which psycopg turns into
# a list (Django keeps jsonb as text).
TOKEN_SQL = """
SELECT t.id AS "token.id", t.user_id AS "token.user_id",
       t.application_id AS "token.application_id", t.expires AS "token.expires",
       t.scope AS "token.scope", t.resource::json AS "token.resource",
       u.id AS "user.id", u.is_superuser AS "user.is_superuser",
       u.is_staff AS "user.is_staff", u.is_active AS "user.is_active", u.email AS "user.email"
FROM oauth2_provider_accesstoken t
JOIN accounts_user u ON u.id = t.user_id
WHERE t.token_checksum = %s
"""


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a Django view that only signed-in users reach, e.g. behind the admin's
    ``admin_view``. For annotations only."""

    user: User


class AuthenticatedRequest(Request):
    """The request an API view behind bearer authentication and ``IsAuthenticated`` (the
    API's defaults) gets. For annotations only: DRF still hands the view its own ``Request``."""

    user: User
    auth: AbstractAccessToken


# Why a bearer token was refused, kept for the WWW-Authenticate header that DRF asks a new
# authenticator instance for, later in the same request.
_refusals: weakref.WeakKeyDictionary[Request, dict[str, str]] = weakref.WeakKeyDictionary()


def _token_with_user(checksum: str) -> tuple[User, AbstractAccessToken] | None:
    """The access token of this checksum and its user, in one query."""
    database = postgresql_database()
    if database is None:
        # SQLite (the local demo): its raw rows hold naive datetimes the ORM would convert.
        found = AccessToken.objects.select_related("user").filter(token_checksum=checksum).first()
        return None if found is None or found.user is None else (found.user, found)
    with database.cursor() as cursor:
        row = fetch_grouped_row(cursor, TOKEN_SQL, [checksum])
    if not row:
        return None
    token = model_instance(AccessToken, row["token"])
    token.user = user = model_instance(User, row["user"])
    return user, token


class BearerTokenAuthentication(BaseAuthentication):
    """django-oauth-toolkit access tokens, read from the ``Authorization: Bearer`` header only.

    The same checks as DOT's resource-server validation (hashed lookup, expiry, resource
    audience, usable application), plus: the account must still be active. Unlike DOT's
    DRF class it never reads the request body, so a body the view would refuse cannot be
    parsed, or break, before authentication has answered. It runs on every API request,
    so it reads the token and its user in one query.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[User, AbstractAccessToken] | None:
        raw_token = self._bearer_token(request)
        if raw_token is None:
            return None
        found = _token_with_user(hashlib.sha256(raw_token.encode()).hexdigest())
        if found is None or not self._usable(*found, request):
            _refusals[request] = {
                "error": "invalid_token",
                "error_description": "The access token is invalid, expired or revoked.",
            }
            return None
        return found

    def authenticate_header(self, request: Request) -> str:
        attributes = {"realm": self.www_authenticate_realm, **_refusals.get(request, {})}
        return "Bearer " + ",".join(f'{name}="{value}"' for name, value in attributes.items())

    def _bearer_token(self, request: Request) -> str | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            _refusals[request] = {"error": "invalid_request"}
            return None
        try:
            return parts[1].decode("ascii")
        except UnicodeDecodeError:
            _refusals[request] = {"error": "invalid_request"}
            return None

    def _usable(self, user: User, token: AbstractAccessToken, request: Request) -> bool:
        # DOT: "now >= expires" is expired.
        if not user.is_active or timezone.now() >= token.expires:
            return False
        if token.resource and not token.allows_audience(request.build_absolute_uri(request.path)):
            return False
        return self._application_usable(token.application_id, request)

    def _application_usable(self, application_id: int | None, request: Request) -> bool:
        # DOT's stock Application is always usable; only a swapped model that overrides
        # is_usable() is worth the query.
        if application_id is None or Application.is_usable is AbstractApplication.is_usable:
            return True
        return Application.objects.get(pk=application_id).is_usable(request)
