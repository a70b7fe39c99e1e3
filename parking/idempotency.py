"""``Idempotency-Key`` on the driver's POSTs: a retry replays the first answer.

For a session start (``run_once``) the record is written in the same transaction as the
session it describes, so it exists exactly when the session does. A concurrent retry
blocks on the record's unique index until the first request commits, then replays its
answer.

A barrier opening (``run_until_answered``) has its effect outside the database, at the
gateway, which cannot be rolled back: the record is committed first and keeps its
``request_id`` through failures, so every retry asks the gateway under the same id."""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from parking.models import IdempotencyRecord

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKeyReused(Exception):
    """The key was already used for a request with a different body."""


class InvalidIdempotencyKey(Exception):
    pass


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def request_fingerprint(path: str, data: object) -> str:
    canonical = json.dumps({"path": path, "body": data}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_idempotency_key(key: str) -> str:
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise InvalidIdempotencyKey(
            _("Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.")
        )
    return key


@transaction.atomic
def run_once(
    *,
    driver: User,
    key: str,
    fingerprint: str,
    now: datetime,
    produce: Callable[[], StoredResponse],
) -> StoredResponse:
    """Run ``produce`` the first time ``key`` is seen for ``driver``; replay it afterwards."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                driver=driver,
                key=key,
                request_fingerprint=fingerprint,
                response_status=0,
                response_body={},
                created_at=now,
            )
    except IntegrityError:
        return _replay(IdempotencyRecord.objects.get(driver=driver, key=key), fingerprint)
    response = produce()
    record.response_status = response.status
    record.response_body = response.body
    record.save(update_fields=["response_status", "response_body"])
    return response


def run_until_answered(
    *,
    driver: User,
    key: str,
    fingerprint: str,
    now: datetime,
    produce: Callable[[str], StoredResponse],
) -> StoredResponse:
    """Run ``produce(request_id)`` until it returns an answer, which is then replayed.

    ``request_id`` is the same for every request with ``key``: when ``produce`` raised (the
    gateway's answer was lost), the retry passes the same id on, and the gateway, which
    acts once per id, does not open twice. Two retries at once both reach the gateway,
    under that one id."""
    with transaction.atomic():
        record, created = IdempotencyRecord.objects.get_or_create(
            driver=driver,
            key=key,
            defaults={
                "request_fingerprint": fingerprint,
                "response_status": 0,
                "response_body": {},
                "created_at": now,
            },
        )
    if not created and (record.response_status or record.request_fingerprint != fingerprint):
        return _replay(record, fingerprint)
    response = produce(str(record.request_id))
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=response.status, response_body=response.body
    )
    return response


def purge_expired_records(*, now: datetime) -> int:
    cutoff = now - settings.IDEMPOTENCY_KEY_RETENTION
    deleted, _per_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _replay(record: IdempotencyRecord, fingerprint: str) -> StoredResponse:
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            _("This Idempotency-Key was already used with a different request body.")
        )
    return StoredResponse(record.response_status, record.response_body, replayed=True)
