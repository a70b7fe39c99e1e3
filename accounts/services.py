from django.db import IntegrityError, transaction

from accounts.models import User


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
