import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken
from oauth2_provider.settings import oauth2_settings

from accounts.models import UsedAuthorizationCode, User
from core.errors import DomainError


class EmailAlreadyRegistered(Exception):
    pass


class AccountDeletionRefused(DomainError):
    """The account cannot be deleted now (the API answers 409 with ``code``)."""

    code = "account_deletion_refused"


class BackOfficeAccount(AccountDeletionRefused):
    code = "back_office_account"


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


def ensure_account_can_be_deleted(*, user: User, now: datetime) -> None:
    """Run every check of ``settings.ACCOUNT_DELETION_CHECKS``; each raises an
    ``AccountDeletionRefused`` (``code`` says why) when the account must stay for now.

    A list of dotted paths, like ``AUTH_PASSWORD_VALIDATORS``, so that an app above this
    one (an open parking session, money still owed) adds its own rule without this app
    importing it."""
    for path in settings.ACCOUNT_DELETION_CHECKS:
        import_string(path)(user=user, now=now)


def refuse_back_office_accounts(*, user: User, now: datetime) -> None:
    """Staff accounts sign audit trails; a superuser closes them, not the driver API."""
    if user.is_staff or user.is_superuser:
        raise BackOfficeAccount(
            _("Back-office accounts cannot be deleted here; ask a superuser to close it.")
        )


def revoke_all_tokens(*, user: User) -> int:
    """Delete every OAuth credential of ``user``: access, refresh and ID tokens, and
    authorization codes not yet exchanged. How many there were."""
    revoked = 0
    for model in (Grant, RefreshToken, AccessToken, IDToken):
        deleted, _by_model = model.objects.filter(user=user).delete()
        revoked += deleted
    return revoked


def erase_user(*, user: User) -> None:
    """Delete the user's row, with what hangs only on it (memberships, Idempotency-Keys).
    The back office's change history keeps its entries about the account, but no longer
    its email: Django writes the object's name into each entry."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk)
    ).update(object_repr=f"Deleted account #{user.pk}")
    user.delete()
