from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from parking.services.back_office import MAX_GRANTED_TRIES


class SessionActionForm(forms.Form):
    """The confirmation of a back-office action on parking sessions: the why is required."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=1000,
        label=_("Reason"),
        help_text=_("Kept in each session's audit trail with your name and the time."),
    )


class GrantTriesForm(SessionActionForm):
    entrance_tries = forms.IntegerField(
        label=_("Entrance tries"), min_value=0, max_value=MAX_GRANTED_TRIES, initial=0
    )
    exit_tries = forms.IntegerField(
        label=_("Exit tries"), min_value=0, max_value=MAX_GRANTED_TRIES, initial=1
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not cleaned.get("entrance_tries") and not cleaned.get("exit_tries"):
            raise forms.ValidationError(_("Grant at least one entrance or exit try."))
        return cleaned


class RefundForm(SessionActionForm):
    """The confirmation of a refund: how much (all that is left by default) and why."""

    amount = forms.DecimalField(
        label=_("Amount to refund"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        help_text=_("Leave it empty to refund all that is left of each session's payment."),
    )
    field_order = ["amount", "reason"]

    def __init__(self, *args: Any, sessions: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = sessions

    def clean_amount(self) -> Decimal | None:
        amount = self.cleaned_data["amount"]
        if amount is not None and self.sessions > 1:
            raise forms.ValidationError(
                _("An amount is for one session; leave it empty to refund several in full.")
            )
        return amount


class RevenueExportForm(forms.Form):
    """The days of a revenue export, Europe/Bucharest days, both included."""

    MAX_DAYS = 366

    first_day = forms.DateField(
        label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    last_day = forms.DateField(
        label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last:
            if last < first:
                raise forms.ValidationError(_("The last day comes before the first."))
            if (last - first).days >= self.MAX_DAYS:
                raise forms.ValidationError(
                    _("Export at most %(days)s days at a time.") % {"days": self.MAX_DAYS}
                )
        return cleaned


class AccountDeletionForm(forms.Form):
    """The confirmation of a deletion request carried out from the back office."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=1000,
        label=_("Reason"),
        help_text=_(
            "Kept in the audit with your name and the time, after the account is gone: "
            "write how the request came (e.g. its ticket), not the driver's name or email."
        ),
    )
