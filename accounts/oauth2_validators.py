from oauth2_provider.oauth2_validators import OAuth2Validator


class ParkingOAuth2Validator(OAuth2Validator):
    """django-oauth-toolkit's validator, except that an empty client secret never authenticates."""

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
