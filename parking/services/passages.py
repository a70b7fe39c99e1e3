"""Passage evidence: the records barriers sign (docs/passage-record.md), relayed by any
driver's phone, stored once and applied to the session they are about."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from core.datetimes import iso_seconds
from parking.models import ParkingSession
from parking.services.access import record_access
from smart_keys.models import AccessEvent, AccessPointKey, AccessResult, Direction, PassageRecord
from smart_keys.passages import (
    Outcome,
    Receipt,
    acknowledgement_for,
    receive_passage_record,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """What became of each uploaded record, in order, and an acknowledgement for each
    barrier key the upload brought records of."""

    receipts: list[Receipt]
    acknowledgements: list[tuple[AccessPointKey, str]]


def upload_passage_records(*, records: list[str], now: datetime) -> Upload:
    """Take each relayed record as the backend does (docs/passage-record.md), each in its
    own transaction: a refused one undoes nothing of the others."""
    receipts = [_receive(text, now) for text in records]
    key_ids = {r.barrier_key.pk for r in receipts if r.barrier_key and r.outcome != Outcome.REFUSED}
    # Read after every record is in: a later record of the upload may have closed a gap.
    keys = AccessPointKey.objects.select_related("access_point").filter(
        pk__in=key_ids, received_through__gt=0
    )
    return Upload(
        receipts,
        [(key, acknowledgement_for(barrier_key=key, now=now)) for key in keys.order_by("pk")],
    )


@transaction.atomic
def _receive(text: str, now: datetime) -> Receipt:
    receipt = receive_passage_record(text=text, now=now)
    if receipt.outcome == Outcome.ACCEPTED:
        assert receipt.record is not None
        apply_passage(record=receipt.record, now=now)
    elif receipt.outcome == Outcome.REFUSED:
        # Forged or tampered records are worth knowing about; the log line holds no token.
        logger.warning("passage record refused (%s): %s", receipt.reason, text[:200])
    return receipt


def apply_passage(*, record: PassageRecord, now: datetime) -> None:
    """Link the record to the session it names, if that session is the named key's at the
    barrier's parking, and write it in the access log."""
    session = (
        ParkingSession.objects.select_for_update()
        .filter(
            pk=record.named_session_id,
            smart_key_id=record.named_smart_key_id,
            secured_parking_id=record.access_point.secured_parking_id,
        )
        .first()
    )
    if session is None:
        return
    PassageRecord.objects.filter(pk=record.pk).update(
        parking_session=session, smart_key_id=session.smart_key_id
    )
    record.parking_session, record.smart_key_id = session, session.smart_key_id
    record_access(
        session=session,
        event=AccessEvent.PASSAGE,
        result=AccessResult.PASSED,
        direction=Direction(record.direction),
        access_point=record.access_point,
        now=record.passed_at,
        detail=format_lazy(
            _("Counter {counter}, barrier sequence {sequence}, barrier time {time}."),
            counter=record.command_counter,
            sequence=record.sequence,
            time=iso_seconds(record.barrier_time),
        ),
    )
