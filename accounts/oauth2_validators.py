import logging

from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator

from accounts.services import record_authorization_code_use, revoke_tokens_of_replayed_code

logger = logging.getLogger(__name__)


class ParkingOAuth2Validator(OAuth2Validator):
    """django-oauth-toolkit's validator, with the rules RFC 6749 sets and DOT leaves loose:
    an empty client secret never authenticates, and a replayed authorization code revokes
    its tokens."""

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

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            # An unknown code may be one already exchanged (DOT deletes its grant then).
            if revoke_tokens_of_replayed_code(code=code):
                logger.warning(
                    "An authorization code was used twice; its tokens are revoked.",
                    extra={"client_id": client_id},
                )
            return False
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        saved = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code":
            record_authorization_code_use(
                code=request.code, refresh_token=token["refresh_token"], now=timezone.now()
            )
        return saved
