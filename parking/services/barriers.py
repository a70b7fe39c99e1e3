"""Online parkings: the backend has the parking's barrier gateway open a barrier."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from parking.models import ParkingSession
from parking.services.access import record_access
from parking.services.sessions import give_try_back, reloaded, spend_try_of
from smart_keys.exceptions import (
    BarrierGatewayError,
    BarrierGatewayNotConfigured,
    BarrierGatewayTimeout,
    BarrierGatewayUnreachable,
)
from smart_keys.gateway import OpenRequest, request_barrier_open
from smart_keys.models import AccessEvent, AccessPoint, AccessResult, BarrierGateway, Direction

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

GATEWAY_RESULTS = {
    BarrierGatewayError.code: AccessResult.GATEWAY_ERROR,
    BarrierGatewayTimeout.code: AccessResult.GATEWAY_TIMEOUT,
    BarrierGatewayUnreachable.code: AccessResult.GATEWAY_UNREACHABLE,
}
WRONG_STATE = {
    Direction.ENTRANCE: _(
        "Cannot open the entrance barrier of a session that is {state}; it must be entering."
    ),
    Direction.EXIT: _(
        "Cannot open the exit barrier of a session that is {state}; it must be exiting."
    ),
}


def open_barrier(
    *,
    session: ParkingSession,
    access_point: AccessPoint | None,
    now: datetime,
    request_id: str | None = None,
) -> ParkingSession:
    """Spend a try (entrance or exit, by the session's state) and have the parking's
    barrier gateway open the barrier (``access_point``, or the key's barriers).

    ``request_id`` is what the gateway opens once for: the app's retry of an opening whose
    answer was lost passes the first one's (parking.idempotency), a new one otherwise.

    The gateway is called after the try's transaction committed, so a slow gateway holds no
    row lock; when it does not confirm, the try is given back and the failure raised."""
    direction = session.barrier_direction

    def log(result: AccessResult, detail: "StrOrPromise") -> None:
        record_access(
            session=session,
            event=AccessEvent.OPEN_REQUEST,
            result=result,
            direction=direction,
            access_point=access_point,
            now=now,
            detail=detail,
        )

    try:
        gateway, request = _spend_try_for_open_request(
            session, access_point, direction, now, request_id or str(uuid.uuid4())
        )
    except DomainError as refusal:
        log(AccessResult.REFUSED, refusal.message)
        raise
    try:
        request_barrier_open(gateway=gateway, request=request)
    except Exception as failure:
        # No confirmed opening (whatever went wrong): the driver did not get through, so
        # the try is theirs again.
        give_try_back(session, direction=direction)
        result = GATEWAY_RESULTS.get(getattr(failure, "code", ""), AccessResult.GATEWAY_ERROR)
        log(
            result,
            format_lazy(
                _("{failure} Request {request_id}."),
                failure=getattr(failure, "message", failure),
                request_id=request.request_id,
            ),
        )
        raise
    log(AccessResult.OPENED, format_lazy(_("Request {request_id}"), request_id=request.request_id))
    return reloaded(session)


@transaction.atomic
def _spend_try_for_open_request(
    session: ParkingSession,
    access_point: AccessPoint | None,
    direction: Direction,
    now: datetime,
    request_id: str,
) -> tuple[BarrierGateway, OpenRequest]:
    gateway = BarrierGateway.objects.filter(
        secured_parking_id=session.secured_parking_id, is_enabled=True
    ).first()
    if gateway is None:
        raise BarrierGatewayNotConfigured(
            _("This parking's barriers are not opened by the backend; use the access command.")
        )
    spend_try_of(session, now, direction=direction, wrong_state=WRONG_STATE[direction])
    access_points = [access_point] if access_point else session.smart_key.access_points.all()
    return gateway, OpenRequest(
        request_id=request_id,
        secured_parking_id=session.secured_parking_id,
        parking_session_id=session.pk,
        smart_key_id=session.smart_key_id,
        direction=direction.value,
        access_points=tuple(sorted(ap.mac_address for ap in access_points)),
    )
