"""A driver's account rights: deleting the account, and personal data that expires.

Sessions, their keys and the access log are accounting and security records, kept for the
legal retention period (README, "Account rights and personal data"). What makes them
personal data is the driver they point at, so anonymising a row empties its ``driver``:
the row stays, about no one."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import ensure_account_can_be_deleted, erase_user, revoke_all_tokens
from parking.exceptions import OpenSessionExists
from parking.models import CLOSED_STATES, ParkingSession
from parking.services.paying import ensure_nothing_outstanding
from parking.services.sessions import cancel_stale_entering_sessions
from payments import services as payments
from payments.models import Payment
from smart_keys.models import AccessLogEntry, SmartKey


@dataclass(frozen=True)
class Anonymised:
    """How many rows lost their driver."""

    parking_sessions: int
    smart_keys: int
    access_log_entries: int


@dataclass(frozen=True)
class AccountDeletion:
    account_id: int
    revoked_tokens: int
    anonymised: Anonymised


@transaction.atomic
def delete_driver_account(*, driver: User, now: datetime) -> AccountDeletion:
    """Delete the driver's account in one transaction: every OAuth token revoked, the user
    row and what hangs only on it deleted, and their sessions, keys and access log kept
    without a driver. Refused (``AccountDeletionRefused`` or ``OpenSessionExists``) while
    a check of ``settings.ACCOUNT_DELETION_CHECKS`` fails, e.g. a session is open."""
    # Locked as a session start locks it: a start in flight finishes first (and is seen
    # below), a later one waits for this and then finds no driver.
    User.objects.select_for_update().filter(pk=driver.pk).values_list("pk").get()
    cancel_stale_entering_sessions(driver=driver, now=now)
    ensure_account_can_be_deleted(user=driver, now=now)
    anonymised = _anonymise(
        sessions=ParkingSession.objects.for_driver(driver),
        payments=Payment.objects.filter(driver=driver),
        smart_keys=SmartKey.objects.filter(driver=driver),
        access_log=AccessLogEntry.objects.filter(driver=driver),
    )
    account_id = driver.pk
    payments.forget_driver(driver=driver)
    revoked = revoke_all_tokens(user=driver)
    erase_user(user=driver)
    return AccountDeletion(account_id=account_id, revoked_tokens=revoked, anonymised=anonymised)


def refuse_while_a_session_is_open(*, user: User, now: datetime) -> None:
    """A car inside, or a stay not yet paid for: the session must end first."""
    open_session = ParkingSession.objects.for_driver(user).open(now).first()
    if open_session is not None:
        raise OpenSessionExists(
            format_lazy(
                _(
                    "You have an open parking session (#{id}); finish or cancel it before "
                    "deleting your account."
                ),
                id=open_session.pk,
            ),
            parking_session_id=open_session.pk,
        )


def refuse_while_money_is_owed(*, user: User, now: datetime) -> None:
    """A stay whose capture failed is a debt: it is settled (402 ``outstanding_balance``)
    before the account and its card go; a capture or release still running finishes first
    (409 ``payment_in_progress``)."""
    ensure_nothing_outstanding(driver=user)
    payments.ensure_settled(driver=user)


@transaction.atomic
def anonymise_old_personal_data(*, now: datetime) -> Anonymised:
    """Empty the driver of closed sessions that ended, and of access-log rows written,
    more than ``settings.PERSONAL_DATA_RETENTION`` ago (with the sessions, their keys)."""
    cutoff = now - settings.PERSONAL_DATA_RETENTION
    sessions = ParkingSession.objects.filter(
        driver__isnull=False, state__in=CLOSED_STATES, end_time__lt=cutoff
    )
    return _anonymise(
        sessions=sessions,
        payments=Payment.objects.filter(driver__isnull=False, parking_session__in=sessions),
        smart_keys=SmartKey.objects.filter(driver__isnull=False, parking_session__in=sessions),
        access_log=AccessLogEntry.objects.filter(driver__isnull=False, created_at__lt=cutoff),
    )


def _anonymise(
    *,
    sessions: QuerySet[ParkingSession],
    smart_keys: QuerySet[SmartKey],
    access_log: QuerySet[AccessLogEntry],
    payments: QuerySet[Payment],
) -> Anonymised:
    # Keys and payments first: their filters may read the sessions' drivers, which the
    # sessions' update empties.
    keys = smart_keys.update(driver=None)
    payments.update(driver=None)
    return Anonymised(
        parking_sessions=sessions.update(driver=None),
        smart_keys=keys,
        access_log_entries=access_log.update(driver=None),
    )
