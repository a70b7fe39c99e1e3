from datetime import datetime

from smart_keys.access_commands import BarrierKey
from smart_keys.models import ParkingKeyPair


def trusted_barrier_keys(
    *, now: datetime, secured_parking_id: int | None = None
) -> list[BarrierKey]:
    """The public keys barriers trust now: the signing one, a next one published by a routine
    rotation, and the previous one within its overlap."""
    key_pairs = ParkingKeyPair.objects.trusted(now)
    if secured_parking_id is not None:
        key_pairs = key_pairs.filter(secured_parking_id=secured_parking_id)
    return [key_pair.barrier_key() for key_pair in key_pairs]
