from django.core.management.base import BaseCommand, CommandError

from parking.models import ParkingSession, State
from payments.models import PaymentState
from payments.providers import ProviderUnavailable
from payments.services import provider_differences, refund_differences


def session_differences() -> list[str]:
    """Finished sessions whose amount is not what their payment took: once it is captured,
    a session says what the payment kept (captured less refunded); before, the amount its
    payment is to take (what a refused card left is reported as outstanding)."""
    differences = []
    finished = ParkingSession.objects.filter(state=State.FINISHED).exclude(payment=None)
    for session in finished.select_related("payment").iterator():
        payment = session.payment
        assert payment is not None
        if payment.state == PaymentState.CAPTURED:
            if session.amount != payment.kept_amount:
                differences.append(
                    f"session #{session.pk}: amount {session.amount}, its payment kept "
                    f"{payment.kept_amount} (captured {payment.captured_amount}, refunded "
                    f"{payment.refunded_amount})"
                )
        elif payment.amount != session.amount:
            differences.append(
                f"session #{session.pk}: amount {session.amount}, its payment's {payment.amount}"
            )
        elif payment.state == PaymentState.OUTSTANDING:
            differences.append(
                f"session #{session.pk}: {payment.outstanding_amount} {payment.currency} "
                "outstanding"
            )
    return differences


class Command(BaseCommand):
    help = (
        "Compare payments with the sessions they pay and with the payment provider; print "
        "every difference and exit with status 1 if there is one."
    )

    def handle(self, *args, **options) -> None:
        try:
            differences = session_differences() + refund_differences() + provider_differences()
        except ProviderUnavailable as error:
            raise CommandError(f"The payment provider cannot be reached: {error}") from error
        for line in differences:
            self.stdout.write(line)
        if differences:
            raise CommandError(f"{len(differences)} difference(s)")
        self.stdout.write("Payments reconcile: no difference.")
