"""What the payments app tells the apps it serves. A payment does not know what it pays for
(a parking session, …): whoever does listens here, and is called in the same transaction."""

from django.dispatch import Signal

# A refund was made: sent once per refund, in the transaction that adds it to the payment's
# ``refunded_amount``, with ``refund`` (a succeeded payments.models.Refund) and ``now``.
refund_recorded = Signal()
