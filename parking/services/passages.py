"""Passage evidence: the records barriers sign (docs/passage-record.md), relayed by any
driver's phone, stored once and applied to the session they are about, so that what a
session is charged follows what the barriers saw rather than what the app reported."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import translation
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from core.datetimes import iso_seconds
from core.errors import DomainError
from parking.exceptions import OpenSessionExists
from parking.models import Anomaly, AnomalyKind, AuditAction, ParkingSession, State
from parking.services import sessions
from parking.services.access import record_access
from smart_keys.models import AccessEvent, AccessPointKey, AccessResult, Direction, PassageRecord
from smart_keys.passages import (
    Outcome,
    Receipt,
    acknowledgement_for,
    receive_passage_record,
    time_statement_for,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """What became of each uploaded record, in order, and an acknowledgement for each
    barrier key the upload brought records of."""

    receipts: list[Receipt]
    # (barrier key, its acknowledgement, a time statement for its parking)
    acknowledgements: list[tuple[AccessPointKey, str, str]]


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
        [
            (
                key,
                acknowledgement_for(barrier_key=key, now=now),
                time_statement_for(secured_parking_id=key.access_point.secured_parking_id, now=now),
            )
            for key in keys.order_by("pk")
        ],
    )


@transaction.atomic
def _receive(text: str, now: datetime) -> Receipt:
    receipt = receive_passage_record(text=text, now=now)
    if receipt.outcome == Outcome.ACCEPTED:
        assert receipt.record is not None
        try:
            with transaction.atomic():
                apply_passage(record=receipt.record, now=now)
        except DomainError as refusal:
            # The evidence is kept whatever a session's rules made of it.
            logger.warning("passage record %s not applied: %s", receipt.record.pk, refusal)
    elif receipt.outcome == Outcome.REFUSED:
        # Forged or tampered records are worth knowing about; the log line holds no token.
        logger.warning("passage record refused (%s): %s", receipt.reason, text[:200])
    return receipt


def apply_passage(*, record: PassageRecord, now: datetime) -> None:
    """What an accepted record means for the session it names (README, "Passage evidence"),
    in the transaction that stored it, through the session services: an entrance makes an
    ``entering`` session ``active`` and reopens a cancelled one; an exit finishes the
    session at the barrier's time. Whatever should not happen is flagged as an anomaly."""
    session = _session_named_by(record)
    if session is None:
        flag(
            record,
            AnomalyKind.NO_SESSION,
            now,
            detail=format_lazy(
                _(
                    "The record names session #{session} and smart key #{key}: no such session "
                    "at this parking."
                ),
                session=record.named_session_id,
                key=record.named_smart_key_id,
            ),
        )
        return
    _link(record, session)
    _flag_a_second_opening(record, session, now)
    if record.direction == Direction.ENTRANCE:
        _entered(record, session, now)
    else:
        _left(record, session, now)


def flag(
    record: PassageRecord,
    kind: AnomalyKind,
    now: datetime,
    *,
    session: ParkingSession | None = None,
    detail: "StrOrPromise" = "",
) -> Anomaly:
    """Write the anomaly down once per record and kind, and in the access log."""
    anomaly, created = Anomaly.objects.get_or_create(
        passage_record=record,
        kind=kind,
        defaults={
            "secured_parking_id": record.secured_parking_id,
            "parking_session": session,
            "detected_at": now,
            "detail": _in_log_language(detail)[:255],
        },
    )
    if created:
        record_access(
            session=session,
            event=AccessEvent.ANOMALY,
            result=AccessResult.FLAGGED,
            direction=Direction(record.direction),
            access_point=record.access_point,
            now=now,
            detail=f"{anomaly.get_kind_display()}: {anomaly.detail}",
        )
    return anomaly


def _session_named_by(record: PassageRecord) -> ParkingSession | None:
    """The session the record names, if it is the named key's at the barrier's parking,
    its row locked: evidence and the driver's own calls change it one at a time."""
    return (
        ParkingSession.objects.select_for_update()
        .filter(
            pk=record.named_session_id,
            smart_key_id=record.named_smart_key_id,
            secured_parking_id=record.secured_parking_id,
        )
        .first()
    )


def _link(record: PassageRecord, session: ParkingSession) -> None:
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


def _flag_a_second_opening(record: PassageRecord, session: ParkingSession, now: datetime) -> None:
    """One command opens one barrier once: a second record of it means it was shared or
    sniffed (at another barrier), or replayed to a barrier that lost its replay table."""
    earlier = (
        PassageRecord.objects.filter(smart_key_id=session.smart_key_id)
        .filter(command_counter=record.command_counter)
        .exclude(pk=record.pk)
        .select_related("access_point")
        .first()
    )
    if earlier is not None:
        flag(
            record,
            AnomalyKind.SHARED_COMMAND,
            now,
            session=session,
            detail=format_lazy(
                _("Command {counter} opened {first} and then {second}."),
                counter=record.command_counter,
                first=earlier.access_point.mac_address,
                second=record.access_point.mac_address,
            ),
        )


def _entered(record: PassageRecord, session: ParkingSession, now: datetime) -> None:
    # An exit flagged before this record came in (uploads come in any order) had one.
    Anomaly.objects.unresolved().filter(
        parking_session=session, kind=AnomalyKind.EXIT_WITHOUT_ENTRANCE
    ).update(resolved_at=now, resolution=_in_log_language(_("The entrance's record came in.")))
    if session.state == State.ENTERING and not session.is_stale(now):
        sessions.confirm_entrance(session=session, now=now)
    elif session.effective_state(now) == State.CANCELLED:
        flag(
            record,
            AnomalyKind.CLOSED_SESSION_PASSAGE,
            now,
            session=session,
            detail=format_lazy(
                _("Session #{id} was cancelled, but its command let a car in at {time}."),
                id=session.pk,
                time=iso_seconds(record.passed_at),
            ),
        )
        # An operator's cancellation is a decision: the anomaly is theirs to look at.
        cancelled_by_operator = session.audit_entries.filter(action=AuditAction.CANCEL)
        if session.driver is not None and not cancelled_by_operator.exists():
            _reopen(session, now)


def _reopen(session: ParkingSession, now: datetime) -> None:
    """A cancelled (or timed-out) session's car came in: charge it from the first passage,
    up to the exit that let it out if one is on record already."""
    entered_at = _first_entrance(session).passed_at
    exit_record = _orphan_exit_after(session, entered_at)
    try:
        reopened = sessions.reopen_parking_session(session=session, entered_at=entered_at, now=now)
    except OpenSessionExists:
        # The driver is on another session now: the exit that ends it ends this stay too.
        return
    if exit_record is not None:
        _charge_up_to(exit_record, reopened, now)


def _left(record: PassageRecord, session: ParkingSession, now: datetime) -> None:
    if not _entrances_of(session).exists():
        flag(
            record,
            AnomalyKind.EXIT_WITHOUT_ENTRANCE,
            now,
            session=session,
            detail=format_lazy(
                _("Session #{id} left at {time}; no entrance of it is on record."),
                id=session.pk,
                time=iso_seconds(record.passed_at),
            ),
        )
    if session.state == State.ACTIVE:
        session = sessions.request_exit(session=session, now=now, left_at=record.passed_at)
    if session.state == State.EXITING:
        sessions.finalize_parking_session(session=session, now=now, left_at=record.passed_at)
    if not _entrances_of(session).exists() and session.driver is not None:
        inside = _stay_ended_by(record, session)
        if inside is not None:
            _charge_up_to(record, inside, now)


def _charge_up_to(exit_record: PassageRecord, stay: ParkingSession, now: datetime) -> None:
    """The car of ``stay`` left through ``exit_record`` (another session's exit, with no
    entrance of its own): ``stay`` is reopened if need be, then finished at that exit."""
    if stay.effective_state(now) == State.CANCELLED:
        try:
            stay = sessions.reopen_parking_session(
                session=stay, entered_at=_first_entrance(stay).passed_at, now=now
            )
        except OpenSessionExists:
            return
    stay = sessions.request_exit(session=stay, now=now, left_at=exit_record.passed_at)
    sessions.finalize_parking_session(session=stay, now=now, left_at=exit_record.passed_at)
    Anomaly.objects.unresolved().filter(
        passage_record=exit_record, kind=AnomalyKind.EXIT_WITHOUT_ENTRANCE
    ).update(
        resolved_at=now,
        resolution=_in_log_language(
            format_lazy(
                _("The car came in on session #{id}, which was charged up to this exit."),
                id=stay.pk,
            )
        ),
    )


def _entrances_of(session: ParkingSession) -> QuerySet[PassageRecord]:
    return PassageRecord.objects.filter(
        parking_session=session, direction=Direction.ENTRANCE
    ).order_by("passed_at", "id")


def _first_entrance(session: ParkingSession) -> PassageRecord:
    entrance = _entrances_of(session).first()
    assert entrance is not None  # asked of sessions whose car came in
    return entrance


def _orphan_exit_after(session: ParkingSession, entered_at: datetime) -> PassageRecord | None:
    """The first exit after ``entered_at`` of another session of the driver at the same
    parking that no entrance explains and no stay was charged for yet: how this car left."""
    flagged = Anomaly.objects.unresolved().filter(
        kind=AnomalyKind.EXIT_WITHOUT_ENTRANCE,
        parking_session__driver_id=session.driver_id,
        secured_parking_id=session.secured_parking_id,
        passage_record__passed_at__gte=entered_at,
    )
    anomaly = flagged.exclude(parking_session=session).select_related("passage_record").first()
    return anomaly.passage_record if anomaly else None


def _stay_ended_by(exit_record: PassageRecord, session: ParkingSession) -> ParkingSession | None:
    """The driver's session at this parking whose car came in before this exit and has not
    left: active again after a passage, or cancelled with a passage on record."""
    candidates = (
        ParkingSession.objects.filter(
            driver_id=session.driver_id,
            secured_parking_id=session.secured_parking_id,
            state__in=[State.ACTIVE, State.CANCELLED, State.ENTERING],
            passage_records__direction=Direction.ENTRANCE,
            passage_records__passed_at__lte=exit_record.passed_at,
        )
        .exclude(pk=session.pk)
        .exclude(passage_records__direction=Direction.EXIT)
        .order_by("-start_time")
    )
    return candidates.select_for_update().first()


def _in_log_language(text: "StrOrPromise") -> str:
    # Anomalies and the access log have one language, the service's.
    with translation.override(settings.LANGUAGE_CODE):
        return str(text)
