"""Refunds in the back office: the "Refund" action on the session list and on a session's
page, for staff with ``parking.refund_parkingsession``, through the one refund service
(parking.services.back_office.refund_by_operator), and a session's refunds on its page."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from core.errors import DomainError
from parking.forms import RefundForm
from parking.models import ParkingSession
from parking.services.back_office import refund_by_operator
from payments.models import Refund, RefundState

REFUND_CONFIRMATION_TEMPLATE = "admin/parking/parkingsession/refund_confirmation.html"


class SessionRefundsAdmin(admin.ModelAdmin):
    """Mixed into the parking session admin, before its other bases."""

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("parking.refund_parkingsession")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ):
        # The page's "Refund…" button posts the list's refund action for this one session.
        extra_context = {**(extra_context or {}), "can_refund": self.has_refund_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Refunds"))
    def refunds_made(self, session: ParkingSession) -> SafeString | str:
        if session.payment_id is None:
            return "—"
        refunds = Refund.objects.filter(payment=session.payment_id).select_related("actor")
        lines = [
            (
                timezone.localtime(refund.refunded_at or refund.created_at).strftime(
                    "%Y-%m-%d %H:%M"
                ),
                f"{refund.amount} {session.currency}",
                refund.get_state_display(),
                refund.provider_reference or "—",
                refund.actor or gettext("Stripe's dashboard"),
                refund.reason,
            )
            for refund in refunds
        ]
        if not lines:
            return "—"
        return format_html_join("", "<div>{}: {} {} ({}), {}: {}</div>", lines)

    @admin.action(description=_("Refund selected sessions…"), permissions=["refund"])
    def refund_sessions(
        self, request: HttpRequest, queryset: QuerySet[ParkingSession]
    ) -> TemplateResponse | None:
        """Ask for the amount (all that is left by default) and a reason, then refund."""
        from parking.admin import at_most_a_page  # which imports this module

        selected = queryset.select_related("driver", "secured_parking", "payment").annotate(
            pending_refunds=Coalesce(
                Sum(
                    "payment__refunds__amount",
                    filter=Q(payment__refunds__state=RefundState.PENDING),
                ),
                Decimal("0"),
            )
        )
        sessions = at_most_a_page(
            self, request, selected, too_many=gettext("Select at most {count} sessions at a time.")
        )
        if sessions is None:
            return None
        form = RefundForm(
            request.POST if "confirm" in request.POST else None, sessions=len(sessions)
        )
        if form.is_valid():
            self._refund(request, sessions, **form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Refund parking sessions"),
            "explanation": gettext(
                "The money goes back to the driver's card through Stripe, and each session's "
                "amount becomes what it kept. Only finished sessions paid in full can be "
                "refunded, never more than what is left."
            ),
            "opts": self.opts,
            "rows": [(session, _left_to_refund(session)) for session in sessions],
            "selected": [session.pk for session in sessions],
            "form": form,
            "action": request.POST["action"],
        }
        return TemplateResponse(request, REFUND_CONFIRMATION_TEMPLATE, context)

    def _refund(
        self,
        request: HttpRequest,
        sessions: Sequence[ParkingSession],
        *,
        amount: Decimal | None,
        reason: str,
    ) -> None:
        assert isinstance(request.user, User)  # the admin lets signed-in staff in only
        now = timezone.now()
        for session in sessions:
            # Each on its own: a refused session does not undo the others.
            try:
                refunds = refund_by_operator(
                    session=session, actor=request.user, amount=amount, reason=reason, now=now
                )
            except DomainError as refusal:
                self.message_user(
                    request,
                    gettext("Session #{id}: {refusal}").format(
                        id=session.pk, refusal=refusal.message
                    ),
                    messages.ERROR,
                )
                continue
            for refund in refunds:
                self.message_user(request, *_outcome(session, refund))


def _left_to_refund(session: ParkingSession) -> Decimal | None:
    payment = session.payment
    if payment is None:
        return None
    pending: Decimal = getattr(session, "pending_refunds", Decimal("0"))
    return payment.kept_amount - pending


def _outcome(session: ParkingSession, refund: Refund) -> tuple[str, int]:
    figures = {"id": session.pk, "amount": refund.amount, "currency": session.currency}
    if refund.state == RefundState.SUCCEEDED:
        return gettext("Session #{id}: {amount} {currency} refunded ({reference}).").format(
            reference=refund.provider_reference, **figures
        ), messages.SUCCESS
    if refund.state == RefundState.FAILED:
        return gettext("Session #{id}: Stripe refused to refund {amount} {currency}: {why}").format(
            why=refund.failure_message, **figures
        ), messages.ERROR
    return gettext(
        "Session #{id}: Stripe did not answer about refunding {amount} {currency}; it is asked "
        "again in the background."
    ).format(**figures), messages.WARNING
