"""Why a payment refuses an action; parking_api.exceptions turns these into HTTP (402, 503)."""

from core.errors import DomainError


class PaymentRequired(DomainError):
    """The driver must do something about paying first; the API answers 402."""

    code = "payment_required"


class PaymentMethodRequired(PaymentRequired):
    code = "payment_method_required"


class PaymentDeclined(PaymentRequired):
    code = "payment_declined"


class PaymentRequiresAction(PaymentRequired):
    """The card's bank wants the driver to authenticate (3-D Secure): the app completes it
    with ``client_secret`` and retries with the same ``Idempotency-Key``."""

    code = "payment_requires_action"


class OutstandingBalance(PaymentRequired):
    code = "outstanding_balance"


class PaymentProviderUnavailable(DomainError):
    """The payment provider could not be reached in time; the API answers 503."""

    code = "payment_provider_unavailable"


class NothingToPay(DomainError):
    code = "nothing_to_pay"


class PaymentInProgress(DomainError):
    """A payment is still being captured or released; the API answers 409."""

    code = "payment_in_progress"


class RefundRefused(DomainError):
    """A refund that cannot be made: more than is left to refund, or a payment not paid in
    full yet. Nothing is asked of the provider."""

    code = "refund_refused"


class PaymentNotCaptured(RefundRefused):
    code = "payment_not_captured"


class RefundExceedsRefundable(RefundRefused):
    code = "refund_exceeds_refundable"
