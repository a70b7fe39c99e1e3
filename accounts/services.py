import hashlib
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from oauth2_provider.models import RefreshToken
from oauth2_provider.settings import oauth2_settings

from accounts.models import UsedAuthorizationCode, User


class EmailAlreadyRegistered(Exception):
    pass


def register_driver(*, email: str, password: str) -> User:
    """Create a driver account; the app then signs in through OAuth."""
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password)
    except IntegrityError as error:
        # Two sign-ups racing with one email: the case-insensitive unique index decides.
        raise EmailAlreadyRegistered(email) from error


def record_authorization_code_use(
    *, code: str, refresh_token: str, now: datetime
) -> UsedAuthorizationCode:
    """Remember that ``code`` was exchanged, and for which refresh token's family."""
    token_family = RefreshToken.objects.values_list("token_family", flat=True).get(
        token_checksum=_checksum(refresh_token), revoked__isnull=True
    )
    if token_family is None:
        # DOT gives each new refresh token a family; without one, nothing could be revoked.
        raise ValueError("The refresh token issued for the code belongs to no token family.")
    return UsedAuthorizationCode.objects.create(
        code_checksum=_checksum(code), token_family=token_family, used_at=now
    )


def revoke_tokens_of_replayed_code(*, code: str) -> bool:
    """If ``code`` was already exchanged, revoke every token that exchange led to: its
    refresh token, the rotations since, and their access tokens. True if it was a replay."""
    record = UsedAuthorizationCode.objects.filter(code_checksum=_checksum(code)).first()
    if record is None:
        return False
    RefreshToken.revoke_family(record.token_family)
    return True


def purge_used_authorization_codes(*, now: datetime) -> int:
    """Forget codes used longer ago than a refresh token lives unused: a replay that late
    is refused all the same, only without revoking (the tokens have most likely expired)."""
    retention = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS)
    deleted, _ = UsedAuthorizationCode.objects.filter(used_at__lt=now - retention).delete()
    return deleted


def _checksum(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
