from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.services import purge_used_authorization_codes
from parking.idempotency import purge_expired_records
from parking.services.sessions import cancel_stale_entering_sessions


class Command(BaseCommand):
    help = (
        "Write down the cancellation of sessions left in 'entering' past the deadline and "
        "forget Idempotency-Keys and used OAuth authorization codes past their retention. "
        "Reads never depend on it having run; schedule it (e.g. every 5 minutes) to keep "
        "the tables tidy."
    )

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        cancelled = cancel_stale_entering_sessions(now=now)
        purged = purge_expired_records(now=now)
        codes = purge_used_authorization_codes(now=now)
        self.stdout.write(
            f"Cancelled {cancelled} stale entering session(s); "
            f"purged {purged} expired idempotency record(s) "
            f"and {codes} used authorization code(s)."
        )
