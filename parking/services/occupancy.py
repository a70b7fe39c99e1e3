"""The count of cars parked in each secured parking (``ParkingOccupancy``): moved in the
transaction of every state change that parks a car or lets one out, and recounted from the
sessions by a job that repairs any drift.

A car is counted from the entrance (``entering`` → ``active``) until its session closes from
``active`` or ``exiting``. Sessions still ``entering`` are not counted here: they take a place
only until their deadline, so readers count them by start time
(``SecuredParkingQuerySet.with_occupancy``). That keeps the counter out of starts,
cancellations and the clean-up job's bulk cancellation of stale ones, which change nothing
parked.

Lock order: a session's row, then its parking's counter. Starts lock the parking's own row
(``SecuredParking``), never the counter, so no workflow waits for the other's locks in the
opposite order."""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from parking.models import PARKED_STATES, ParkingOccupancy, ParkingSession, SecuredParking

logger = logging.getLogger(__name__)


def count_car_in(*, secured_parking_id: int) -> None:
    """A car entered: one more parked, in the caller's transaction."""
    # The row appears with the first car; ignoring a conflict, two first cars at once
    # both find it.
    ParkingOccupancy.objects.bulk_create(
        [ParkingOccupancy(secured_parking_id=secured_parking_id)], ignore_conflicts=True
    )
    _add(secured_parking_id, 1)


def count_car_out(*, secured_parking_id: int) -> None:
    """A parked car's session closed: one fewer, in the caller's transaction. The database
    refuses to go below zero (``occupancy_not_negative``): a car leaving that was never
    counted is a drift, and it fails loudly rather than hide."""
    _add(secured_parking_id, -1)


def _add(secured_parking_id: int, change: int) -> None:
    # In SQL, onto what the row holds now: concurrent entrances and exits all count.
    ParkingOccupancy.objects.filter(pk=secured_parking_id).update(parked=F("parked") + change)


@dataclass(frozen=True)
class OccupancyDrift:
    secured_parking_id: int
    counted: int  # what the counter held
    parked: int  # the sessions parked, written to it


def recount_occupancy() -> list[OccupancyDrift]:
    """Compare every parking's counter with its parked sessions and repair those that
    differ, logging each; returns the repairs."""
    drifts = []
    for parking_id in _parkings_whose_counter_differs():
        drift = _repair(parking_id)
        if drift is not None:
            logger.warning(
                "Occupancy of secured parking %s drifted: the counter said %s parked, the "
                "sessions %s; repaired.",
                drift.secured_parking_id,
                drift.counted,
                drift.parked,
            )
            drifts.append(drift)
    return drifts


def _parkings_whose_counter_differs() -> list[int]:
    parked = (
        ParkingSession.objects.filter(secured_parking=OuterRef("pk"), state__in=PARKED_STATES)
        .order_by()
        .values("secured_parking")
        .annotate(count=Count("*"))
        .values("count")
    )
    # One statement, so one snapshot: a state change commits its session and its counter
    # together, and a difference seen here is a drift, not a change in flight.
    return list(
        SecuredParking.objects.annotate(
            counter=Coalesce(F("occupancy__parked"), 0),
            sessions=Coalesce(Subquery(parked), 0),
        )
        .exclude(counter=F("sessions"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def _repair(parking_id: int) -> OccupancyDrift | None:
    ParkingOccupancy.objects.bulk_create(
        [ParkingOccupancy(secured_parking_id=parking_id)], ignore_conflicts=True
    )
    # Locked before counting: a state change of this parking commits before the count (and
    # is in it) or waits to move the counter after the repair.
    counter = ParkingOccupancy.objects.select_for_update().get(pk=parking_id)
    parked = ParkingSession.objects.filter(
        secured_parking_id=parking_id, state__in=PARKED_STATES
    ).count()
    if counter.parked == parked:
        return None
    ParkingOccupancy.objects.filter(pk=parking_id).update(parked=parked)
    return OccupancyDrift(secured_parking_id=parking_id, counted=counter.parked, parked=parked)
