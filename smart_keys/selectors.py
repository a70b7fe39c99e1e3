from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from parking.models import ParkingSession, SecuredParking
from parking_api.serializers import iso_seconds
from smart_keys.access_commands import BarrierKey, access_point_tag
from smart_keys.models import AccessPoint, ParkingKeyPair, SmartKey


def valid_keys_for(driver: User, *, now: datetime) -> QuerySet[SmartKey]:
    """Keys the driver can use right now: inside their window and tied to an open session."""
    open_sessions = ParkingSession.objects.for_driver(driver).open(now)
    return (
        SmartKey.objects.filter(
            driver=driver,
            start_time__lte=now,
            end_time__gt=now,
            parking_session__in=open_sessions,
        )
        .select_related("secured_parking")
        .prefetch_related(Prefetch("access_points", queryset=AccessPoint.objects.order_by("id")))
    )


def trusted_barrier_keys(
    *, now: datetime, secured_parking_id: int | None = None
) -> list[BarrierKey]:
    """The public keys barriers trust now (current, and previous within the overlap)."""
    key_pairs = ParkingKeyPair.objects.trusted(now)
    if secured_parking_id is not None:
        key_pairs = key_pairs.filter(secured_parking_id=secured_parking_id)
    return [key_pair.barrier_key() for key_pair in key_pairs]


def barrier_provisioning(*, now: datetime, parking_ids: list[int] | None = None) -> list[dict]:
    """Per parking: the public keys and access point tags its barriers are provisioned with."""
    parkings = SecuredParking.objects.order_by("pk").prefetch_related(
        Prefetch("key_pairs", queryset=ParkingKeyPair.objects.trusted(now), to_attr="trusted"),
        Prefetch("access_points", queryset=AccessPoint.objects.order_by("direction", "id")),
    )
    if parking_ids:
        parkings = parkings.filter(pk__in=parking_ids)
    return [_provisioning(parking) for parking in parkings]


def _provisioning(parking: SecuredParking) -> dict:
    current = next((kp for kp in parking.trusted if kp.is_current), None)
    previous = max(
        (kp for kp in parking.trusted if not kp.is_current),
        key=lambda kp: kp.retired_at,
        default=None,
    )
    return {
        "secured_parking_id": parking.pk,
        "name": parking.name,
        "is_online": parking.is_online,
        "current_key": current and _key(current),
        "previous_key": previous
        and {**_key(previous), "accepted_until": iso_seconds(previous.accepted_until)},
        "access_points": [
            {
                "id": access_point.pk,
                "mac_address": access_point.mac_address,
                "direction": access_point.direction,
                "tag": access_point_tag(access_point.mac_address).hex(),
            }
            for access_point in parking.access_points.all()
        ],
    }


def _key(key_pair: ParkingKeyPair) -> dict:
    return {
        "key_id": key_pair.key_id,
        "public_key": key_pair.public_key,
        "created_at": iso_seconds(key_pair.created_at),
    }
