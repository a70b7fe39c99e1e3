from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ParkingConfig(AppConfig):
    name = "parking"
    verbose_name = _("Parking")

    def ready(self) -> None:
        from parking.services.paying import lower_amount_by_refund
        from payments.signals import refund_recorded

        # The payments app does not know sessions: a session hears of its refunds here.
        refund_recorded.connect(lower_amount_by_refund, dispatch_uid="parking.refund")
