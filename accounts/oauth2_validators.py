import logging
import re

from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from accounts.services import record_authorization_code_use, revoke_tokens_of_replayed_code

logger = logging.getLogger(__name__)

# RFC 7636 §4.1: 43 to 128 characters of the URI "unreserved" set, for the verifier and
# (S256 being base64url of a SHA-256) for the challenge.
PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


class ParkingOAuth2Validator(OAuth2Validator):
    """django-oauth-toolkit's validator, with the rules RFC 6749, 7636 and 9700 set and DOT
    leaves loose: an empty client secret never authenticates, redirect URIs match exactly,
    PKCE values have the RFC's shape, and a replayed authorization code revokes its tokens."""

    def _check_secret(self, provided_secret: str, stored_secret: str) -> bool:
        # The mobile app is a public client registered without a secret. DOT compares the
        # empty secret a caller sends with the empty (or hashed-empty) one stored, and would
        # let anyone who knows the public client id "authenticate" as the app, e.g. at
        # /o/introspect/ to learn whose a token is. Public clients identify themselves
        # with client_id alone, which does not go through this check.
        return bool(provided_secret) and super()._check_secret(provided_secret, stored_secret)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        # A deactivated account keeps no way in: its refresh tokens stop minting tokens too.
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        return valid and request.user.is_active

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        # DOT compares URIs as URLs, so the scheme and host match in any case
        # (parkingapp://OAUTH/callback); RFC 9700 §2.1 requires exact string matching.
        return redirect_uri in request.client.redirect_uris.split()

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        # oauthlib fills a missing redirect_uri with the registered one. RFC 6749 §4.1.3
        # requires the token request to repeat the authorization request's; it is always
        # asked for (a client that sent none there names the registered one here).
        if request.using_default_redirect_uri:
            raise errors.InvalidRequestError(
                description="Missing redirect_uri parameter.", request=request
            )
        return super().confirm_redirect_uri(
            client_id, code, redirect_uri, client, request, *args, **kwargs
        )

    def save_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        if request.code_challenge is not None and not PKCE_VALUE.fullmatch(request.code_challenge):
            raise errors.InvalidRequestError(
                description="code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].",
                request=request,
            )
        super().save_authorization_code(client_id, code, request, *args, **kwargs)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            # An unknown code may be one already exchanged (DOT deletes its grant then).
            if revoke_tokens_of_replayed_code(code=code):
                logger.warning(
                    "An authorization code was used twice; its tokens are revoked.",
                    extra={"client_id": client_id},
                )
            return False
        verifier = request.code_verifier
        if verifier is not None and not PKCE_VALUE.fullmatch(verifier):
            raise errors.InvalidRequestError(
                description="code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~].",
                request=request,
            )
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        saved = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code":
            record_authorization_code_use(
                code=request.code, refresh_token=token["refresh_token"], now=timezone.now()
            )
        return saved
