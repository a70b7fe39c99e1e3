from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.request import Request


class BearerTokenAuthentication(OAuth2Authentication):
    """django-oauth-toolkit bearer tokens, refused once the account is deactivated."""

    def authenticate(self, request: Request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _token = result
        if not user.is_active:
            request.oauth2_error = {
                "error": "invalid_token",
                "error_description": "The account is deactivated.",
            }
            return None
        return result
