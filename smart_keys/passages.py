"""Workflows for what barriers report (docs/passage-record.md): their own public keys, the
passage records phones relay, and what phones carry back to them. Like
``smart_keys.services`` they know barriers and keys, not parking sessions; each takes
``now``."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F, Max
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from smart_keys.access_commands import access_point_tag
from smart_keys.exceptions import BarrierKeyInUse, InvalidBarrierKey
from smart_keys.models import AccessPoint, AccessPointKey, PassageRecord
from smart_keys.passage_records import (
    Acknowledgement,
    PassageRecordRefused,
    TimeStatement,
    decode_passage_record,
    sign,
)
from smart_keys.passage_records import PassageRecord as SignedRecord
from smart_keys.services import current_key_pair
from smart_keys.signed_messages import check_signature, key_id_for

PUBLIC_KEY_HEX = re.compile(r"^[0-9a-f]{64}$")


def parse_barrier_key(text: str) -> str:
    """A barrier's public key as stored: 64 lower-case hex digits (spaces and colons, which
    firmware consoles print, are dropped)."""
    key = re.sub(r"[\s:]", "", text).lower()
    if not PUBLIC_KEY_HEX.match(key):
        raise InvalidBarrierKey(
            _("A barrier's public key is 32 bytes in hex: 64 digits 0-9 and a-f.")
        )
    return key


@transaction.atomic
def register_barrier_key(
    *, access_point: AccessPoint, public_key: str, now: datetime, compromised: bool = False
) -> AccessPointKey:
    """The barrier's records are verified with ``public_key`` (hex) from now on. The key it
    replaces still verifies the records it signed before now, for ``BARRIER_KEY_OVERLAP``
    (not at all when ``compromised``: a barrier pulled off the wall, its key read out).
    Registering the current key again changes nothing."""
    key = parse_barrier_key(public_key)
    # The barrier's row lock: two registrations for one barrier run one after the other.
    AccessPoint.objects.select_for_update().filter(pk=access_point.pk).values_list("pk").get()
    current = AccessPointKey.objects.current().filter(access_point=access_point).first()
    if current is not None and current.public_key == key and not compromised:
        return current
    holder = AccessPointKey.objects.elsewhere(key, access_point.pk).first()
    if holder is not None:
        raise BarrierKeyInUse(
            format_lazy(
                _("This public key is already registered on access point #{id}."),
                id=holder.access_point_id,
            )
        )
    if current is not None:
        overlap = timedelta(0) if compromised else settings.BARRIER_KEY_OVERLAP
        AccessPointKey.objects.filter(pk=current.pk).update(
            replaced_at=now, accepted_until=now + overlap
        )
        if current.public_key == key:
            return AccessPointKey.objects.get(pk=current.pk)
    return AccessPointKey.objects.create(
        access_point=access_point,
        key_id=key_id_for(bytes.fromhex(key)).hex(),
        public_key=key,
        registered_at=now,
    )


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class Receipt:
    """What became of one uploaded record: ``record`` is the stored row (accepted and
    duplicate), ``barrier_key`` the key that signed it, when known."""

    outcome: Outcome
    reason: str = ""
    record: PassageRecord | None = None
    barrier_key: AccessPointKey | None = None
    sequence: int | None = None


def receive_passage_record(*, text: str, now: datetime) -> Receipt:
    """Verify one relayed record (docs/passage-record.md, "What the backend does") and store
    it once. Runs in the caller's transaction, which applies an accepted record to its
    session before committing; the barrier key's row stays locked until then, so parallel
    uploads of one barrier's records are taken one at a time."""
    try:
        fields, payload, signature = decode_passage_record(text)
        barrier_key = _signing_barrier_key(fields, payload, signature, now)
    except PassageRecordRefused as refusal:
        return Receipt(Outcome.REFUSED, refusal.reason)
    refused = partial(Receipt, Outcome.REFUSED, barrier_key=barrier_key, sequence=fields.sequence)
    signed_at = _from_timestamp(fields.barrier_time)
    if not barrier_key.takes_record_signed_at(_corrected(signed_at, barrier_key, now), now):
        return refused("barrier_key_replaced")
    stored = PassageRecord.objects.filter(barrier_key=barrier_key, sequence=fields.sequence)
    if (existing := stored.first()) is not None:
        if existing.record != text:
            return refused("sequence_reused")
        return Receipt(Outcome.DUPLICATE, "", existing, barrier_key, fields.sequence)
    _estimate_clock(barrier_key, lead=signed_at - now, now=now)
    record = PassageRecord.objects.create(
        barrier_key=barrier_key,
        access_point_id=barrier_key.access_point_id,
        secured_parking_id=barrier_key.access_point.secured_parking_id,
        sequence=fields.sequence,
        direction=fields.direction,
        named_smart_key_id=fields.smart_key_id,
        named_session_id=fields.parking_session_id,
        command_counter=fields.command_counter,
        barrier_time=signed_at,
        passed_at=_corrected(signed_at, barrier_key, now),
        received_at=now,
        record=text,
    )
    _advance_received_through(barrier_key)
    return Receipt(Outcome.ACCEPTED, "", record, barrier_key, fields.sequence)


def _signing_barrier_key(
    fields: SignedRecord, payload: bytes, signature: bytes, now: datetime
) -> AccessPointKey:
    """The registered key that signed the record, its row locked; else refused."""
    candidates = AccessPointKey.objects.select_related("access_point").filter(
        key_id=fields.barrier_key_id.hex()
    )
    for candidate in candidates:
        if access_point_tag(candidate.access_point.mac_address) != fields.access_point_tag:
            continue
        check_signature(
            bytes.fromhex(candidate.public_key), signature, payload, PassageRecordRefused
        )
        locked = AccessPointKey.objects.select_for_update(of=("self",))
        return locked.select_related("access_point").get(pk=candidate.pk)
    raise PassageRecordRefused("unknown_barrier_key", "No barrier holds this key.")


def _estimate_clock(barrier_key: AccessPointKey, *, lead: timedelta, now: datetime) -> None:
    """How far ahead the barrier's clock is, at least: the largest lead of barrier time over
    arrival among its records received in ``BARRIER_CLOCK_WINDOW``, this one's included.

    A record arrives after its passage, so every lead is the offset less the delay of its
    relay: the largest is the offset less the shortest delay, close to it as soon as one
    phone relayed at once. Phones that relay late only lower leads, so they never move the
    estimate; a clock set right again is followed once its older records leave the window."""
    recent = PassageRecord.objects.filter(
        barrier_key=barrier_key, received_at__gt=now - settings.BARRIER_CLOCK_WINDOW
    )
    largest = recent.aggregate(
        lead=Max(
            ExpressionWrapper(F("barrier_time") - F("received_at"), output_field=DurationField())
        )
    )["lead"]
    offset = round(max(lead, largest or lead).total_seconds())
    AccessPointKey.objects.filter(pk=barrier_key.pk).update(
        clock_offset=offset, clock_estimated_at=now
    )
    barrier_key.clock_offset, barrier_key.clock_estimated_at = offset, now


def _corrected(barrier_time: datetime, barrier_key: AccessPointKey, now: datetime) -> datetime:
    """When the passage happened: the barrier's time less how far ahead its clock is known to
    be, never after the record arrived. A clock that seems behind is left as it is: its
    records may as well have been relayed late."""
    ahead = timedelta(seconds=max(barrier_key.clock_offset or 0, 0))
    return min(barrier_time - ahead, now)


def _advance_received_through(barrier_key: AccessPointKey) -> None:
    """``received_through`` up to the end of the run of sequence numbers without a gap."""
    through = barrier_key.received_through
    following = (
        PassageRecord.objects.filter(barrier_key=barrier_key, sequence__gt=through)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    for sequence in following.iterator():
        if sequence != through + 1:
            break
        through = sequence
    if through != barrier_key.received_through:
        AccessPointKey.objects.filter(pk=barrier_key.pk).update(received_through=through)
        barrier_key.received_through = through


def acknowledgement_for(*, barrier_key: AccessPointKey, now: datetime) -> str:
    """ "Records of this barrier key up to ``received_through`` received", signed with the
    parking's key that signs now, for the app to hand back to the barrier."""
    access_point = barrier_key.access_point
    key_pair = current_key_pair(secured_parking_id=access_point.secured_parking_id, now=now)
    acknowledgement = Acknowledgement(
        parking_key_id=bytes.fromhex(key_pair.key_id),
        barrier_key_id=bytes.fromhex(barrier_key.key_id),
        access_point_tag=access_point_tag(access_point.mac_address),
        received_through=barrier_key.received_through,
    )
    return sign(acknowledgement, key_pair.private_key())


def time_statement_for(*, secured_parking_id: int, now: datetime) -> str:
    """ "The backend's time is ``now``", worth ``TIME_STATEMENT_VALIDITY``, signed with the
    parking's key that signs now: a phone carries it to a barrier without a network, which
    corrects its clock with it (docs/passage-record.md, "Time statement")."""
    key_pair = current_key_pair(secured_parking_id=secured_parking_id, now=now)
    statement = TimeStatement(
        parking_key_id=bytes.fromhex(key_pair.key_id),
        issued_at=int(now.timestamp()),
        lifetime=int(settings.TIME_STATEMENT_VALIDITY.total_seconds()),
    )
    return sign(statement, key_pair.private_key())


def _from_timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
