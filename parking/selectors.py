from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from parking.models import ParkingSession, SecuredParking
from smart_keys.models import AccessPoint


def session_bodies_for(driver: User):
    """The driver's sessions with everything the session body needs, in two queries."""
    return (
        ParkingSession.objects.for_driver(driver)
        .select_related("secured_parking__tariff", "smart_key__secured_parking")
        .prefetch_related(
            Prefetch("smart_key__access_points", queryset=AccessPoint.objects.order_by("id"))
        )
    )


def current_session_for(driver: User, *, now: datetime) -> ParkingSession | None:
    """The driver's open session (entering, active or exiting), if any."""
    return session_bodies_for(driver).open(now).first()


def back_office_parkings(user: User) -> QuerySet[SecuredParking]:
    """The parkings ``user`` runs in the back office: all for superusers, else their operators'."""
    if user.is_superuser:
        return SecuredParking.objects.all()
    return SecuredParking.objects.run_by(user)
