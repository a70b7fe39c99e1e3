"""Workflows that issue smart keys and signed access commands, rotate the parkings' signing
keys and write the access log. Each takes ``now``; the parking-session services call them
inside their own transactions."""

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least

from accounts.models import User
from parking.models import ParkingSession, SecuredParking, State
from smart_keys.access_commands import (
    MAX_LIFETIME_SECONDS,
    AccessCommand,
    access_point_tag,
    key_id_for,
    raw_public_key,
    sign_access_command,
)
from smart_keys.models import (
    AccessEvent,
    AccessLogEntry,
    AccessPoint,
    AccessResult,
    Direction,
    ParkingKeyPair,
    SmartKey,
    SmartKeyType,
)
from smart_keys.secrets_at_rest import encrypt_secret

EXIT_STATES = (State.EXITING, State.FINISHED)


def issue_session_key(*, driver: User, secured_parking: SecuredParking, now: datetime) -> SmartKey:
    """A fresh ``session_access`` key that opens the parking's entrance barriers.

    It has no access command yet: a command names its session, so the caller issues the
    first one with ``refresh_access_command`` once the session exists."""
    smart_key = SmartKey.objects.create(
        driver=driver,
        secured_parking=secured_parking,
        type=SmartKeyType.SESSION_ACCESS,
        description=f"Session access to {secured_parking.name}",
        start_time=now,
        end_time=now + settings.SMART_KEY_VALIDITY,
    )
    _serve_access_points(smart_key, Direction.ENTRANCE)
    return smart_key


@transaction.atomic
def refresh_access_command(*, smart_key_id: int, now: datetime) -> str:
    """A new command and a key window starting now: each try gets one, so a captured
    command soon stops working, and its higher counter makes barriers refuse older ones."""
    command = issue_access_command(smart_key_id=smart_key_id, now=now)
    SmartKey.objects.filter(pk=smart_key_id).update(
        start_time=now, end_time=now + settings.SMART_KEY_VALIDITY
    )
    return command


@transaction.atomic
def issue_access_command(*, smart_key_id: int, now: datetime) -> str:
    """Sign and store a new command for the key's barriers, valid from now for
    ``ACCESS_COMMAND_VALIDITY`` (never past the entering deadline), and log it."""
    # Incremented in SQL, and the key's row stays locked until commit: parallel tries get
    # distinct counters, increasing in the order they take the lock.
    SmartKey.objects.filter(pk=smart_key_id).update(command_counter=F("command_counter") + 1)
    smart_key = SmartKey.objects.select_related("parking_session").get(pk=smart_key_id)
    key_pair = current_key_pair(secured_parking_id=smart_key.secured_parking_id, now=now)
    command = _command_for(smart_key, key_id=bytes.fromhex(key_pair.key_id), now=now)
    text = sign_access_command(command, key_pair.private_key())
    SmartKey.objects.filter(pk=smart_key_id).update(access_command=text)
    record_access(
        session=smart_key.parking_session,
        event=AccessEvent.COMMAND_ISSUED,
        result=AccessResult.ISSUED,
        now=now,
        detail=f"Counter {command.counter}, key {key_pair.key_id}, "
        f"{len(command.access_point_tags)} access points, valid {command.lifetime} s.",
    )
    return text


def switch_key_to_exit(*, smart_key_id: int, now: datetime) -> None:
    """The driver heads out: the key now opens the exit barriers instead of the entrance."""
    _serve_access_points(SmartKey.objects.get(pk=smart_key_id), Direction.EXIT)
    refresh_access_command(smart_key_id=smart_key_id, now=now)


def expire_key(*, smart_key_id: int, now: datetime) -> None:
    """The session is over: the key stops being valid now, if it still was, and its command
    is withdrawn, so a closed session never serves one."""
    SmartKey.objects.filter(pk=smart_key_id).update(
        access_command="", end_time=Least(F("end_time"), Greatest(F("start_time"), Value(now)))
    )


def direction_of(session: ParkingSession) -> Direction:
    """The barriers a session's key opens: the entrance until the driver heads out."""
    return Direction.EXIT if session.state in EXIT_STATES else Direction.ENTRANCE


def current_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    """The key pair that signs the parking's commands, made on first use."""
    key_pair = ParkingKeyPair.objects.current().filter(secured_parking_id=secured_parking_id)
    return key_pair.first() or _create_key_pair(secured_parking_id=secured_parking_id, now=now)


def ensure_key_pairs(*, now: datetime, parking_ids: list[int] | None = None) -> int:
    """Give each parking (or each listed one) a key pair if it has none yet, so barriers can
    be provisioned before the first command is signed. Returns how many were made."""
    parkings = SecuredParking.objects.exclude(
        pk__in=ParkingKeyPair.objects.current().values("secured_parking_id")
    )
    if parking_ids:
        parkings = parkings.filter(pk__in=parking_ids)
    missing = list(parkings.values_list("pk", flat=True))
    for parking_id in missing:
        _create_key_pair(secured_parking_id=parking_id, now=now)
    return len(missing)


@transaction.atomic
def rotate_parking_key_pair(
    *, secured_parking: SecuredParking, now: datetime, overlap: timedelta | None = None
) -> ParkingKeyPair:
    """Replace the parking's signing key pair. Commands signed with the previous key still
    verify for ``overlap`` (``ACCESS_COMMAND_KEY_OVERLAP`` by default; give zero when the
    old key leaked). Barriers hold one previous key, so an older one stops being trusted."""
    overlap = settings.ACCESS_COMMAND_KEY_OVERLAP if overlap is None else overlap
    # Serialize rotations of one parking: each retires exactly the key the other made.
    SecuredParking.objects.select_for_update().get(pk=secured_parking.pk)
    key_pairs = ParkingKeyPair.objects.filter(secured_parking=secured_parking)
    key_pairs.filter(retired_at__isnull=False, accepted_until__gt=now).update(
        accepted_until=Greatest(F("retired_at"), Value(now))
    )
    key_pairs.current().update(retired_at=now, accepted_until=now + overlap)
    return _create_key_pair(secured_parking_id=secured_parking.pk, now=now)


def record_access(
    *,
    session: ParkingSession,
    event: AccessEvent,
    result: AccessResult,
    now: datetime,
    direction: Direction | None = None,
    access_point: AccessPoint | None = None,
    detail: str = "",
) -> AccessLogEntry:
    """Append one row to the access log; ``direction`` defaults to the session's."""
    return AccessLogEntry.objects.create(
        created_at=now,
        event=event,
        result=result,
        direction=direction or direction_of(session),
        driver_id=session.driver_id,
        secured_parking_id=session.secured_parking_id,
        parking_session_id=session.pk,
        smart_key_id=session.smart_key_id,
        access_point=access_point,
        detail=detail[:255],
    )


def _create_key_pair(*, secured_parking_id: int, now: datetime) -> ParkingKeyPair:
    private_key = Ed25519PrivateKey.generate()
    public_key = raw_public_key(private_key.public_key())
    try:
        with transaction.atomic():
            return ParkingKeyPair.objects.create(
                secured_parking_id=secured_parking_id,
                key_id=key_id_for(public_key).hex(),
                public_key=public_key.hex(),
                encrypted_private_key=encrypt_secret(private_key.private_bytes_raw()),
                created_at=now,
            )
    except IntegrityError:
        # A parallel first use made the parking's key pair: sign with that one.
        return ParkingKeyPair.objects.current().get(secured_parking_id=secured_parking_id)


def _command_for(smart_key: SmartKey, *, key_id: bytes, now: datetime) -> AccessCommand:
    session = smart_key.parking_session
    macs = sorted(smart_key.access_points.values_list("mac_address", flat=True))
    return AccessCommand(
        direction=direction_of(session),
        key_id=key_id,
        smart_key_id=smart_key.pk,
        parking_session_id=session.pk,
        counter=smart_key.command_counter,
        not_before=int(now.timestamp()),
        lifetime=_command_lifetime(session, now),
        access_point_tags=tuple(access_point_tag(mac) for mac in macs),
    )


def _command_lifetime(session: ParkingSession, now: datetime) -> int:
    lifetime = settings.ACCESS_COMMAND_VALIDITY
    if session.state == State.ENTERING:
        # Never past the entering deadline: from then on the session counts as cancelled.
        lifetime = min(lifetime, session.start_time + settings.PARKING_ENTERING_TIMEOUT - now)
    return max(1, min(int(lifetime.total_seconds()), MAX_LIFETIME_SECONDS))


def _serve_access_points(smart_key: SmartKey, direction: Direction) -> None:
    smart_key.access_points.set(
        AccessPoint.objects.filter(
            secured_parking_id=smart_key.secured_parking_id, direction=direction
        )
    )
