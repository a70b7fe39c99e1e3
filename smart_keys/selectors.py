from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from parking.models import ParkingSession
from smart_keys.models import AccessPoint, SmartKey


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
