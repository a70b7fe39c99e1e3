"""Workflows that issue smart keys and signed access commands and rotate the parkings'
signing keys. They know keys, barriers and key pairs, not parking sessions: the session
services (parking.services) say which session and direction a command is for, and call
these inside their own transactions. Each takes ``now``."""

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from smart_keys.access_commands import (
    AccessCommand,
    access_point_tag,
    key_id_for,
    raw_public_key,
    sign_access_command,
)
from smart_keys.exceptions import KeyRotationPending, NoNextKeyPair
from smart_keys.models import (
    AccessPoint,
    Direction,
    KeyPairState,
    ParkingKeyPair,
    ParkingKeyPairQuerySet,
    SmartKey,
    SmartKeyType,
)
from smart_keys.secrets_at_rest import encrypt_secret


def issue_smart_key(
    *, driver: User, secured_parking_id: int, description: str, now: datetime
) -> SmartKey:
    """A fresh ``session_access`` key that opens the parking's entrance barriers.

    It has no access command yet: a command names its session, so the caller issues the
    first one with ``issue_access_command`` once the session exists."""
    smart_key = SmartKey.objects.create(
        driver=driver,
        secured_parking_id=secured_parking_id,
        type=SmartKeyType.SESSION_ACCESS,
        description=description,
        start_time=now,
        end_time=now + settings.SMART_KEY_VALIDITY,
    )
    point_key_at(smart_key=smart_key, direction=Direction.ENTRANCE)
    return smart_key


@transaction.atomic
def issue_access_command(
    *,
    smart_key_id: int,
    parking_session_id: int,
    direction: Direction,
    lifetime_seconds: int,
    now: datetime,
    access_point_id: int | None = None,
) -> AccessCommand:
    """Sign and store a new command for the key's barriers (or for ``access_point_id``
    alone, one of them: the barrier the phone sees), valid from now for
    ``lifetime_seconds``, and open the key's window from now: each try gets a command, so a
    captured one soon stops working, and its higher counter makes barriers refuse older ones."""
    # Incremented in SQL, and the key's row stays locked until commit: parallel tries get
    # distinct counters, increasing in the order they take the lock.
    SmartKey.objects.filter(pk=smart_key_id).update(command_counter=F("command_counter") + 1)
    smart_key = SmartKey.objects.get(pk=smart_key_id)
    key_pair = current_key_pair(secured_parking_id=smart_key.secured_parking_id, now=now)
    access_points = smart_key.access_points.all()
    if access_point_id is not None:
        # Named alone, a barrier is the only one a sniffed or shared command opens.
        access_points = access_points.filter(pk=access_point_id)
    macs = sorted(access_points.values_list("mac_address", flat=True))
    if access_point_id is not None and not macs:
        raise ValueError(
            f"Smart key #{smart_key_id} does not open access point #{access_point_id}."
        )
    command = AccessCommand(
        direction=direction,
        key_id=bytes.fromhex(key_pair.key_id),
        smart_key_id=smart_key.pk,
        parking_session_id=parking_session_id,
        counter=smart_key.command_counter,
        not_before=int(now.timestamp()),
        lifetime=lifetime_seconds,
        access_point_tags=tuple(access_point_tag(mac) for mac in macs),
    )
    SmartKey.objects.filter(pk=smart_key_id).update(
        access_command=sign_access_command(command, key_pair.private_key()),
        start_time=now,
        # Offered at least as long as its command opens.
        end_time=now + max(settings.SMART_KEY_VALIDITY, timedelta(seconds=lifetime_seconds)),
    )
    return command


def point_key_at(*, smart_key: SmartKey, direction: Direction) -> None:
    """The key opens the ``direction`` barriers of its parking, and no others."""
    smart_key.access_points.set(
        AccessPoint.objects.filter(
            secured_parking_id=smart_key.secured_parking_id, direction=direction
        )
    )


def expire_key(*, smart_key_id: int, now: datetime) -> None:
    """The session is over: the key stops being valid now, if it still was, and its command
    is withdrawn, so a closed session never serves one."""
    SmartKey.objects.filter(pk=smart_key_id).update(
        access_command="", end_time=Least(F("end_time"), Greatest(F("start_time"), Value(now)))
    )


def current_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    """The key pair that signs the parking's commands at ``now``, made on first use. A next
    pair whose time has come signs from this one query, before any switch is written."""
    key_pair = ParkingKeyPair.objects.signing(now).filter(secured_parking_id=secured_parking_id)
    return key_pair.first() or _first_key_pair(secured_parking_id=secured_parking_id, now=now)


def ensure_key_pairs(*, parking_ids: list[int], now: datetime) -> int:
    """Give each listed parking a key pair if it has none yet, so barriers can be
    provisioned before the first command is signed. Returns how many were made."""
    have_one = set(
        ParkingKeyPair.objects.current()
        .filter(secured_parking_id__in=parking_ids)
        .values_list("secured_parking_id", flat=True)
    )
    missing = [parking_id for parking_id in parking_ids if parking_id not in have_one]
    for parking_id in missing:
        _first_key_pair(secured_parking_id=parking_id, now=now)
    return len(missing)


@transaction.atomic
def rotate_parking_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    """Publish the parking's next key pair, the routine rotation. It starts signing after
    ``ACCESS_COMMAND_KEY_ROTATION_DELAY``, or earlier when an operator switches to it
    (``switch_to_next_key_pair``), so barriers are provisioned with it before they see a
    command it signed; the current pair signs until then and is trusted for
    ``ACCESS_COMMAND_KEY_OVERLAP`` after. A parking without a key pair gets its first one,
    signing at once. Refused while a next key pair is waiting."""
    key_pairs = _locked_key_pairs(secured_parking_id=secured_parking_id, now=now)
    if key_pairs.filter(state=KeyPairState.NEXT).exists():
        raise KeyRotationPending(
            format_lazy(
                _(
                    "Parking #{id} already has a next key pair waiting: switch to it "
                    "or wait for its switch before rotating again."
                ),
                id=secured_parking_id,
            )
        )
    signs_from = now + settings.ACCESS_COMMAND_KEY_ROTATION_DELAY
    if not _schedule_switch(key_pairs, at=signs_from):
        return _new_key_pair(secured_parking_id=secured_parking_id, now=now)
    return _new_key_pair(
        secured_parking_id=secured_parking_id,
        now=now,
        state=KeyPairState.NEXT,
        signs_from=signs_from,
    )


@transaction.atomic
def switch_to_next_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    """Sign with the parking's next key pair from ``now``, before its delay is up: the
    operator has provisioned every barrier with it. The pair it replaces stays trusted for
    ``ACCESS_COMMAND_KEY_OVERLAP``."""
    # The parking's row lock makes the check and the switch one step: of two switches at
    # once, the second finds no next pair left, never two current ones.
    key_pairs = _locked_key_pairs(secured_parking_id=secured_parking_id, now=now)
    next_pair = key_pairs.filter(state=KeyPairState.NEXT).first()
    if next_pair is None:
        raise NoNextKeyPair(
            format_lazy(
                _("Parking #{id} has no next key pair waiting: rotate first."),
                id=secured_parking_id,
            )
        )
    _schedule_switch(key_pairs, at=now)
    key_pairs.current().update(state=KeyPairState.RETIRED)
    key_pairs.filter(pk=next_pair.pk).update(state=KeyPairState.CURRENT, signs_from=now)
    next_pair.state, next_pair.signs_from = KeyPairState.CURRENT, now
    return next_pair


@transaction.atomic
def rotate_leaked_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    """The emergency rotation, for a leaked private key: a new key pair signs from ``now``
    and every other pair of the parking, a waiting next one included (stored like the
    leaked one), is trusted no longer. Barriers refuse every command until they are
    provisioned with the new key."""
    key_pairs = _locked_key_pairs(secured_parking_id=secured_parking_id, now=now)
    key_pairs.trusted(now).update(
        state=KeyPairState.RETIRED,
        retired_at=Least(Coalesce(F("retired_at"), Value(now)), Value(now)),
        accepted_until=Value(now),
    )
    return _new_key_pair(secured_parking_id=secured_parking_id, now=now)


def _locked_key_pairs(*, secured_parking_id: int, now: datetime) -> ParkingKeyPairQuerySet:
    """The parking's key pairs, its row locked until commit so that rotations and switches
    of one parking run one after the other, with a switch that came due written down."""
    # The parking is reached through the foreign key, not imported: it is a higher layer.
    parkings = ParkingKeyPair._meta.get_field("secured_parking").related_model._default_manager
    list(parkings.select_for_update().filter(pk=secured_parking_id).values_list("pk"))
    key_pairs = ParkingKeyPair.objects.filter(secured_parking_id=secured_parking_id)
    # Retire first: the next pair may only become current once the current one is not.
    key_pairs.filter(state=KeyPairState.CURRENT, retired_at__lte=now).update(
        state=KeyPairState.RETIRED
    )
    key_pairs.filter(state=KeyPairState.NEXT, signs_from__lte=now).update(
        state=KeyPairState.CURRENT
    )
    return key_pairs


def _schedule_switch(key_pairs: ParkingKeyPairQuerySet, *, at: datetime) -> int:
    """The current pair signs until ``at`` and is trusted for the overlap after; returns
    whether there was one."""
    # Barriers hold one previous key: an older one's overlap ends at the switch.
    key_pairs.filter(state=KeyPairState.RETIRED, accepted_until__gt=at).update(
        accepted_until=Greatest(F("retired_at"), Value(at))
    )
    return key_pairs.current().update(
        retired_at=at, accepted_until=at + settings.ACCESS_COMMAND_KEY_OVERLAP
    )


def _first_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    try:
        with transaction.atomic():
            return _new_key_pair(secured_parking_id=secured_parking_id, now=now)
    except IntegrityError:
        # A parallel first use made the parking's key pair: sign with that one.
        return ParkingKeyPair.objects.current().get(secured_parking_id=secured_parking_id)


def _new_key_pair(
    *,
    secured_parking_id: int,
    now: datetime,
    state: KeyPairState = KeyPairState.CURRENT,
    signs_from: datetime | None = None,
) -> ParkingKeyPair:
    private_key = Ed25519PrivateKey.generate()
    public_key = raw_public_key(private_key.public_key())
    return ParkingKeyPair.objects.create(
        secured_parking_id=secured_parking_id,
        key_id=key_id_for(public_key).hex(),
        public_key=public_key.hex(),
        encrypted_private_key=encrypt_secret(private_key.private_bytes_raw()),
        state=state,
        created_at=now,
        signs_from=signs_from or now,
    )
