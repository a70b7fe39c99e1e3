from django.core.management.base import BaseCommand
from django.utils import timezone

from parking.tasks import clean_up_parking


class Command(BaseCommand):
    help = (
        "Write down the cancellation of sessions left in 'entering' past the deadline and "
        "forget Idempotency-Keys and used OAuth authorization codes past their retention. "
        "The job worker runs it every 5 minutes (parking.tasks); this runs it once, now."
    )

    def handle(self, *args, **options) -> None:
        done = clean_up_parking(now=timezone.now())
        self.stdout.write(
            f"Cancelled {done.cancelled_sessions} stale entering session(s); "
            f"purged {done.purged_idempotency_records} expired idempotency record(s) "
            f"and {done.purged_authorization_codes} used authorization code(s)."
        )
