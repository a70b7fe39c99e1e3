import hashlib
import weakref
from typing import Any

from django.db.models import QuerySet
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
from core.prepared_queries import PreparedQuery

AccessToken = get_access_token_model()
Application = get_application_model()

USER_COLUMNS = ("id", "email", "is_active", "is_staff", "is_superuser")
TOKEN_COLUMNS = ("id", "expires", "scope", "resource", "application_id")


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


def _token_with_user_query(checksum: str) -> QuerySet[Any, dict[str, Any]]:
    return (
        AccessToken.objects.filter(token_checksum=checksum)
        .values(*TOKEN_COLUMNS, *(f"user__{column}" for column in USER_COLUMNS))
        .order_by("pk")
    )


_token_with_user = PreparedQuery(_token_with_user_query, checksum="prepared-query-sentinel")


class BearerTokenAuthentication(BaseAuthentication):
    """django-oauth-toolkit access tokens, read from the ``Authorization: Bearer`` header only.

    The same checks as DOT's resource-server validation (hashed lookup, expiry, resource
    audience, usable application), plus: the account must still be active. Unlike DOT's
    DRF class it never reads the request body, so a body the view would refuse cannot be
    parsed, or break, before authentication has answered. It runs on every API request,
    so it reads one flat row (token and user), with SQL compiled once per process.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[User, AbstractAccessToken] | None:
        raw_token = self._bearer_token(request)
        if raw_token is None:
            return None
        row = _token_with_user.first(checksum=hashlib.sha256(raw_token.encode()).hexdigest())
        if row is None or not self._usable(row, request):
            _refusals[request] = {
                "error": "invalid_token",
                "error_description": "The access token is invalid, expired or revoked.",
            }
            return None
        user = User.from_db(None, USER_COLUMNS, [row[f"user__{column}"] for column in USER_COLUMNS])
        token = AccessToken.from_db(
            None, (*TOKEN_COLUMNS, "user_id"), [*(row[c] for c in TOKEN_COLUMNS), user.pk]
        )
        token.user = user
        return user, token

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

    def _usable(self, row: dict[str, Any], request: Request) -> bool:
        # DOT: a token without an expiry is expired; "now >= expires" is expired too.
        if row["user__id"] is None or not row["user__is_active"]:
            return False
        if row["expires"] is None or timezone.now() >= row["expires"]:
            return False
        if row["resource"] and not AccessToken(resource=row["resource"]).allows_audience(
            request.build_absolute_uri(request.path)
        ):
            return False
        return self._application_usable(row["application_id"], request)

    def _application_usable(self, application_id: int | None, request: Request) -> bool:
        # DOT's stock Application is always usable; only a swapped model that overrides
        # is_usable() is worth the query.
        if application_id is None or Application.is_usable is AbstractApplication.is_usable:
            return True
        return Application.objects.get(pk=application_id).is_usable(request)
