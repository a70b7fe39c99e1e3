from datetime import UTC, datetime

from django.db.models import JSONField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import JSONObject

from accounts.models import User
from parking.aggregates import JSONArrayAgg
from parking.models import ParkingSession, SecuredParking, entering_cutoff
from parking_api.prepared_queries import PreparedQuery
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


CURRENT_SESSION_COLUMNS = (
    "id",
    "type",
    "state",
    "start_time",
    "end_time",
    "entrance_remaining_tries",
    "exit_remaining_tries",
    "amount",
    "currency",
    "secured_parking_id",
    "secured_parking__name",
    "secured_parking__is_active",
    "secured_parking__is_online",
    "secured_parking__tariff__free_minutes",
    "secured_parking__tariff__period_minutes",
    "secured_parking__tariff__price_per_period",
    "secured_parking__tariff__daily_cap",
    "smart_key_id",
    "smart_key__description",
    "smart_key__type",
    "smart_key__access_command",
    "smart_key__start_time",
    "smart_key__end_time",
)


def _current_session_query(driver_id: int, cutoff: datetime):
    access_points = (
        AccessPoint.objects.filter(smart_keys=OuterRef("smart_key_id"))
        .order_by()
        .values("smart_keys")
        .annotate(
            items=JSONArrayAgg(
                JSONObject(id="id", mac_address="mac_address", direction="direction")
            )
        )
        .values("items")
    )
    return (
        ParkingSession.objects.filter(driver_id=driver_id)
        .open_given_cutoff(cutoff)
        .annotate(access_points=Subquery(access_points, output_field=JSONField()))
        .values(*CURRENT_SESSION_COLUMNS, "access_points")
        .order_by("pk")
    )


_current_session = PreparedQuery(
    _current_session_query, driver_id=-7_357_911, cutoff=datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)
)


def current_session_row(driver_id: int, *, now: datetime) -> dict | None:
    """The driver's open session as one flat row: session, key, parking, tariff and the key's
    access points (as a JSON array), in a single query.

    The app asks for it on every launch: a row instead of model instances, one query
    instead of three, and SQL compiled once per process keep that request cheap.
    parking.bodies turns the row into the body the other session endpoints serialize."""
    return _current_session.first(driver_id=driver_id, cutoff=entering_cutoff(now))


def back_office_parkings(user: User) -> QuerySet[SecuredParking]:
    """The parkings ``user`` runs in the back office: all for superusers, else their operators'."""
    if user.is_superuser:
        return SecuredParking.objects.all()
    return SecuredParking.objects.run_by(user)
