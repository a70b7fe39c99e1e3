"""A session's side of smart keys: which command it gets, and what the access log says."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation

from parking.models import ParkingSession, State
from smart_keys.access_commands import MAX_LIFETIME_SECONDS
from smart_keys.models import AccessEvent, AccessLogEntry, AccessPoint, AccessResult, Direction
from smart_keys.services import issue_access_command

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def issue_session_command(
    *,
    session: ParkingSession,
    now: datetime,
    access_point: AccessPoint | None = None,
    validity: timedelta | None = None,
) -> None:
    """A fresh signed command for the barriers the session's key opens now (``access_point``
    alone when the app named the barrier it sees), valid for ``validity`` (by default
    ``ACCESS_COMMAND_VALIDITY``), logged."""
    command = issue_access_command(
        smart_key_id=session.smart_key_id,
        parking_session_id=session.pk,
        direction=session.barrier_direction,
        lifetime_seconds=_command_lifetime(
            session, now, validity or settings.ACCESS_COMMAND_VALIDITY
        ),
        now=now,
        access_point_id=access_point.pk if access_point else None,
    )
    record_access(
        session=session,
        event=AccessEvent.COMMAND_ISSUED,
        result=AccessResult.ISSUED,
        now=now,
        access_point=access_point,
        detail=f"Counter {command.counter}, key {command.key_id.hex()}, "
        f"{len(command.access_point_tags)} access points, valid {command.lifetime} s.",
    )


def record_access(
    *,
    session: ParkingSession | None,
    event: AccessEvent,
    result: AccessResult,
    now: datetime,
    direction: Direction | None = None,
    access_point: AccessPoint | None = None,
    detail: "StrOrPromise" = "",
) -> AccessLogEntry:
    """Append one row to the access log; ``direction`` defaults to the session's. Without a
    session (an anomaly about a passage that names none) the row is the access point's."""
    # The log has one language, the service's, whichever language the request spoke.
    with translation.override(settings.LANGUAGE_CODE):
        detail = str(detail)
    if session is None:
        # An anomaly about a passage that names no session: the barrier's row.
        assert access_point is not None and direction is not None
        parking_id, driver_id = access_point.secured_parking_id, None
        session_id = smart_key_id = None
    else:
        parking_id, driver_id = session.secured_parking_id, session.driver_id
        session_id, smart_key_id = session.pk, session.smart_key_id
        direction = direction or session.barrier_direction
    return AccessLogEntry.objects.create(
        created_at=now,
        event=event,
        result=result,
        direction=direction,
        driver_id=driver_id,
        secured_parking_id=parking_id,
        parking_session_id=session_id,
        smart_key_id=smart_key_id,
        access_point=access_point,
        detail=detail[:255],
    )


def _command_lifetime(session: ParkingSession, now: datetime, lifetime: timedelta) -> int:
    if session.state == State.ENTERING:
        # Never past the entering deadline: from then on the session counts as cancelled.
        lifetime = min(lifetime, session.start_time + settings.PARKING_ENTERING_TIMEOUT - now)
    return max(1, min(int(lifetime.total_seconds()), MAX_LIFETIME_SECONDS))
