"""Helpers for tests of what the database itself enforces."""

from django.db import IntegrityError, transaction


def refused_by_the_database(callable_) -> bool:
    """Whether ``callable_``'s writes break a constraint (rolled back either way)."""
    try:
        with transaction.atomic():
            callable_()
    except IntegrityError:
        return True
    return False
