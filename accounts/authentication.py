import hashlib

from oauth2_provider.models import get_access_token_model
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

AccessToken = get_access_token_model()


class BearerTokenAuthentication(BaseAuthentication):
    """django-oauth-toolkit access tokens, read from the ``Authorization: Bearer`` header only.

    The same checks as DOT's resource-server validation (hashed lookup, expiry, resource
    audience, usable application), plus: the account must still be active. Unlike DOT's
    DRF class it never reads the request body, so a body the view would refuse cannot be
    parsed, or break, before authentication has answered.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request):
        raw_token = self._bearer_token(request)
        if raw_token is None:
            return None
        access_token = (
            AccessToken.objects.select_related("user", "application")
            .filter(token_checksum=hashlib.sha256(raw_token.encode()).hexdigest())
            .first()
        )
        if access_token is None or not self._usable(access_token, request):
            request.oauth2_error = {
                "error": "invalid_token",
                "error_description": "The access token is invalid, expired or revoked.",
            }
            return None
        return access_token.user, access_token

    def authenticate_header(self, request: Request) -> str:
        attributes = {"realm": self.www_authenticate_realm, **getattr(request, "oauth2_error", {})}
        return "Bearer " + ",".join(f'{name}="{value}"' for name, value in attributes.items())

    def _bearer_token(self, request: Request) -> str | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            request.oauth2_error = {"error": "invalid_request"}
            return None
        try:
            return parts[1].decode("ascii")
        except UnicodeDecodeError:
            request.oauth2_error = {"error": "invalid_request"}
            return None

    def _usable(self, access_token, request: Request) -> bool:
        if not access_token.is_valid() or not access_token.user.is_active:
            return False
        if access_token.resource and not access_token.allows_audience(
            request.build_absolute_uri(request.path)
        ):
            return False
        application = access_token.application
        return application is None or application.is_usable(request)
