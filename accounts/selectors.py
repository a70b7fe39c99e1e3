"""Reads about an account."""

from dataclasses import dataclass

from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import User


@dataclass(frozen=True)
class OAuthCredentials:
    access_tokens: list[AccessToken]
    refresh_tokens: list[RefreshToken]
    authorization_grants: list[Grant]


def oauth_credentials_of(user: User) -> OAuthCredentials:
    """The user's tokens and unexchanged authorization codes, each with its application
    (one query per kind)."""
    return OAuthCredentials(
        access_tokens=list(
            AccessToken.objects.filter(user=user).select_related("application").order_by("id")
        ),
        refresh_tokens=list(
            RefreshToken.objects.filter(user=user).select_related("application").order_by("id")
        ),
        authorization_grants=list(
            Grant.objects.filter(user=user).select_related("application").order_by("id")
        ),
    )
