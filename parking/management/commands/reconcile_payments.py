from django.core.management.base import BaseCommand, CommandError

from parking.models import ParkingSession, State
from payments.models import PaymentState
from payments.providers import ProviderUnavailable
from payments.services import provider_differences


def session_differences() -> list[str]:
    """Finished sessions whose payment did not take exactly their amount: for each, captured
    less refunded must be the amount charged (or the rest is outstanding)."""
    differences = []
    finished = ParkingSession.objects.filter(state=State.FINISHED).exclude(payment=None)
    for session in finished.select_related("payment").iterator():
        payment = session.payment
        assert payment is not None
        if payment.amount != session.amount:
            differences.append(
                f"session #{session.pk}: amount {session.amount}, its payment's {payment.amount}"
            )
        elif payment.state == PaymentState.OUTSTANDING:
            differences.append(
                f"session #{session.pk}: {payment.outstanding_amount} {payment.currency} "
                "outstanding"
            )
        elif payment.state == PaymentState.CAPTURED and payment.captured_amount != session.amount:
            differences.append(
                f"session #{session.pk}: charged {session.amount}, captured "
                f"{payment.captured_amount}"
            )
    return differences


class Command(BaseCommand):
    help = (
        "Compare payments with the sessions they pay and with the payment provider; print "
        "every difference and exit with status 1 if there is one."
    )

    def handle(self, *args, **options) -> None:
        try:
            differences = session_differences() + provider_differences()
        except ProviderUnavailable as error:
            raise CommandError(f"The payment provider cannot be reached: {error}") from error
        for line in differences:
            self.stdout.write(line)
        if differences:
            raise CommandError(f"{len(differences)} difference(s)")
        self.stdout.write("Payments reconcile: no difference.")
