from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    """Users are known by email; there is no separate username."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> "User":
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person who signs in: a car driver, or an operator's staff in the back office."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # Django's documented way for a user without a username: a BaseUserManager of our own
    # in place of AbstractUser's (username-based) UserManager, which the stubs insist on.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["email"]
        constraints = [
            # Emails are compared case-insensitively, so the database must agree.
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class UsedAuthorizationCode(models.Model):
    """An OAuth authorization code already exchanged for tokens.

    django-oauth-toolkit deletes a code's grant once it is used, which leaves a second
    exchange of the same code looking like an unknown code. This record outlives the grant,
    so that a replay is recognised and can revoke the tokens the code issued (RFC 6749
    §4.1.2): a code used twice has leaked, and either holder may be the thief."""

    # SHA-256 of the code: even a spent code is not kept in clear.
    code_checksum = models.CharField(max_length=64, unique=True)
    # The refresh-token family the exchange started: the first pair and every rotation since.
    token_family = models.UUIDField()
    used_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Authorization code used at {self.used_at:%Y-%m-%d %H:%M:%S}"
