from django.core.management.base import BaseCommand

from parking.services.occupancy import recount_occupancy


class Command(BaseCommand):
    help = (
        "Recount the cars parked in each secured parking from its sessions and repair every "
        "counter that differs, logging each. The job worker runs it every hour "
        "(parking.recount_occupancy); this runs it once, now."
    )

    def handle(self, *args, **options) -> None:
        drifts = recount_occupancy()
        for drift in drifts:
            self.stdout.write(
                f"Secured parking #{drift.secured_parking_id}: counted {drift.counted} parked, "
                f"the sessions {drift.parked}; repaired."
            )
        self.stdout.write(f"Occupancy recounted: {len(drifts)} counter(s) repaired.")
