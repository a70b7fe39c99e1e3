import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, TypeVar, cast

from django.contrib import admin, messages
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.authentication import AuthenticatedHttpRequest
from accounts.models import User
from core.admin import OperatorScopedAdmin, ParkingFilter, ServiceWrittenAdmin
from core.admin_large_tables import LargeTableAdmin
from core.errors import DomainError
from parking.admin_refunds import SessionRefundsAdmin
from parking.dashboard import dashboard_for
from parking.exceptions import ParkingError
from parking.forms import AccountDeletionForm, GrantTriesForm, SessionActionForm
from parking.models import (
    Anomaly,
    Debt,
    Operator,
    OperatorMembership,
    ParkingSession,
    ParkingSessionQuerySet,
    SecuredParking,
    SessionAuditEntry,
    Tariff,
)
from parking.services import back_office, operators
from smart_keys.admin import (
    AccessPointInline,
    access_point_list,
    mac_search_term,
    rotate_routinely,
)
from smart_keys.models import AccessPoint, SmartKey

if TYPE_CHECKING:
    # django-stubs' type of a row with annotations; only the type checker reads it.
    from django_stubs_ext import StrPromise, WithAnnotations

WINDOW_FORMAT = "%Y-%m-%d %H:%M"
SESSION_ID = re.compile(r"^#?\d{1,18}$")
PARTIAL_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2})+$")
# An action page lists every session it will change; more than a page is a mistake.
MAX_SESSIONS_PER_ACTION = 100


def validity_window(key: SmartKey) -> str:
    start = timezone.localtime(key.start_time).strftime(WINDOW_FORMAT)
    end = timezone.localtime(key.end_time).strftime(WINDOW_FORMAT)
    return f"{start} – {end} ({timezone.get_current_timezone_name()})"


def readable_duration(span: timedelta) -> str:
    days, minutes = divmod(int(span.total_seconds()) // 60, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = (
        gettext("{hours} h {minutes} min").format(hours=hours, minutes=f"{minutes:02d}")
        if hours
        else gettext("{minutes} min").format(minutes=minutes)
    )
    return gettext("{days} d {rest}").format(days=days, rest=text) if days else text


RowT = TypeVar("RowT", bound=Model)


def at_most_a_page(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[RowT], *, too_many: str
) -> list[RowT] | None:
    """The rows an action was asked to change; None past a page, with ``too_many`` (a
    message with ``{count}``) shown."""
    rows = list(queryset[: MAX_SESSIONS_PER_ACTION + 1])
    if len(rows) > MAX_SESSIONS_PER_ACTION:
        modeladmin.message_user(
            request, too_many.format(count=MAX_SESSIONS_PER_ACTION), messages.ERROR
        )
        return None
    return rows


class OperatorMembershipInline(admin.TabularInline):
    model = OperatorMembership
    fields = ["user", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    extra = 1

    # Memberships are added (through the service, which also grants the staff permissions)
    # or removed; re-pointing one at another user would skip that.
    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class OperatorCounts(TypedDict):
    parking_count: int
    staff_count: int


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    """Parking companies and their staff; superusers only (staff get no Operator rights)."""

    list_display = ["name", "parking_count", "staff_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]
    inlines = [OperatorMembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Operator]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                parking_count=Count("secured_parkings", distinct=True),
                staff_count=Count("memberships", distinct=True),
            )
        )

    @admin.display(description=_("Parkings"), ordering="parking_count")
    def parking_count(self, operator: "WithAnnotations[Operator, OperatorCounts]") -> int:
        return operator.parking_count

    @admin.display(description=_("Staff"), ordering="staff_count")
    def staff_count(self, operator: "WithAnnotations[Operator, OperatorCounts]") -> int:
        return operator.staff_count

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not OperatorMembership:
            return super().save_formset(request, form, formset, change)
        new_memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership.delete()
        for membership in new_memberships:
            operators.add_operator_staff(user=membership.user, operator=form.instance)


class TariffInline(admin.StackedInline):
    model = Tariff
    can_delete = False
    min_num = 1
    max_num = 1


class AccessPointCount(TypedDict):
    access_point_count: int


@admin.register(SecuredParking)
class SecuredParkingAdmin(OperatorScopedAdmin):
    parking_path = "pk"
    list_display = [
        "name",
        "operator",
        "address",
        "is_active",
        "is_online",
        "currency",
        "capacity",
        "access_point_count",
    ]
    list_filter = ["operator", "is_active", "is_online", "currency"]
    list_select_related = ["operator"]
    search_fields = ["name", "address"]
    ordering = ["name", "id"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [AccessPointInline, TariffInline]
    actions = ["rotate_signing_keys"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SecuredParking]:
        return super().get_queryset(request).annotate(access_point_count=Count("access_points"))

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("smart_keys.change_parkingkeypair")

    @admin.action(
        description=_("Rotate the signing keys of the selected parkings (routine)"),
        permissions=["rotate"],
    )
    def rotate_signing_keys(self, request: HttpRequest, queryset: QuerySet[SecuredParking]) -> None:
        """The key pair admin's routine rotation, reached from the parkings an operator runs;
        switching early and the emergency rotation are on the key pair list."""
        rotate_routinely(self, request, list(queryset.order_by("pk")))

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        user = request.user
        if db_field.related_model is Operator and not user.is_superuser:
            assert user.is_authenticated  # the admin lets signed-in staff in only
            # Nullable in the table for old rows, never left out by operator staff.
            kwargs["queryset"] = Operator.objects.staffed_by(user)
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> list:
        # The operator filter would list every company; staff only ever see their own.
        if request.user.is_superuser:
            return self.list_filter
        return [f for f in self.list_filter if f != "operator"]

    @admin.display(description=_("Access points"), ordering="access_point_count")
    def access_point_count(
        self, parking: "WithAnnotations[SecuredParking, AccessPointCount]"
    ) -> int:
        return parking.access_point_count


def audit_changes(entry: SessionAuditEntry) -> SafeString:
    lines = []
    for field, value in entry.details.items():
        label = field.replace("_", " ")
        if isinstance(value, list) and len(value) == 2:
            if value[0] != value[1]:
                lines.append((label, f"{value[0]} → {value[1]}"))
        else:
            lines.append((label, value))
    return format_html_join(mark_safe("<br>"), "{}: {}", lines)


class SessionAuditEntryInline(admin.TabularInline):
    """The audit trail on the session page: who did what from the back office, and why."""

    model = SessionAuditEntry
    fields = readonly_fields = ("created_at", "actor", "action", "reason", "changes")
    extra = 0
    can_delete = False
    verbose_name_plural = _("Audit trail")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionAuditEntry]:
        return super().get_queryset(request).select_related("actor")

    # Written only by the services, never edited.
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("Changes"))
    def changes(self, entry: SessionAuditEntry) -> SafeString:
        return audit_changes(entry)


@admin.register(SessionAuditEntry)
class SessionAuditEntryAdmin(ServiceWrittenAdmin, OperatorScopedAdmin):
    """Every back-office action, read-only: on sessions (staff see their parkings') and
    account deletions (superusers only: they name no parking)."""

    parking_path = "session__secured_parking"
    list_display = ["created_at", "actor", "action", "session", "reason", "changes"]
    list_filter = ["action"]
    list_select_related = ["actor", "session"]
    ordering = ["-created_at", "-id"]

    @admin.display(description=_("Changes"))
    def changes(self, entry: SessionAuditEntry) -> SafeString:
        return audit_changes(entry)


class ResolvedFilter(admin.SimpleListFilter):
    title = _("resolved")
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", _("Not resolved")), ("yes", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


@admin.register(Anomaly)
class AnomalyAdmin(ServiceWrittenAdmin, LargeTableAdmin, OperatorScopedAdmin):
    """What barriers' records show that should not happen (parking.services.passages):
    read-only, for operators to look into."""

    parking_path = "secured_parking"
    list_display = [
        "detected_at",
        "kind",
        "secured_parking",
        "session_link",
        "barrier",
        "passed_at",
        "detail",
        "resolution",
    ]
    list_filter = ["kind", ResolvedFilter, ("secured_parking", ParkingFilter)]
    list_select_related = ["secured_parking", "passage_record__access_point"]
    search_fields = ["parking_session__id__exact", "passage_record__access_point__mac_address"]
    date_hierarchy = "detected_at"
    ordering = ["-detected_at", "-id"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))

    @admin.display(description=_("Parking session"))
    def session_link(self, anomaly: Anomaly) -> SafeString | None:
        if anomaly.parking_session_id is None:
            return None
        url = reverse("admin:parking_parkingsession_change", args=[anomaly.parking_session_id])
        return format_html('<a href="{}">#{}</a>', url, anomaly.parking_session_id)

    @admin.display(description=_("Barrier"))
    def barrier(self, anomaly: Anomaly) -> str:
        return anomaly.passage_record.access_point.mac_address

    @admin.display(description=_("Passed at"))
    def passed_at(self, anomaly: Anomaly):
        return anomaly.passage_record.passed_at


class SessionSearchAdmin(admin.ModelAdmin):
    """The search box of the session lists (every session, debts)."""

    # Searched by get_search_results below, one indexed lookup per kind of term; the
    # fields are listed for the search box to show.
    search_fields = ["id", "driver__email", "smart_key__access_points__mac_address"]
    search_help_text = _(
        "A session id (42), a driver's email or part of it, or a barrier's MAC address "
        "(whole in any spelling, or its last bytes such as AB:CD)."
    )

    def get_search_results(self, request, queryset, search_term):
        """Each kind of term gets the one lookup an index answers, never a LIKE over the
        joined rows of a million sessions, and no DISTINCT (each filter is a semi-join)."""
        term = search_term.strip()
        mac = mac_search_term(term)
        if not term:
            return queryset, False
        if mac != term or PARTIAL_MAC.match(term):
            barriers = AccessPoint.objects.filter(
                mac_address__contains=mac.upper().replace("-", ":")
            )
            keys = SmartKey.access_points.through.objects.filter(accesspoint__in=barriers)
            return queryset.filter(smart_key__in=keys.values("smartkey_id")), False
        if SESSION_ID.match(term):
            return queryset.filter(pk=int(term.lstrip("#"))), False
        drivers = User.objects.filter(email__icontains=term).values("pk")
        return queryset.filter(driver__in=drivers), False


@admin.register(ParkingSession)
class ParkingSessionAdmin(
    SessionRefundsAdmin,
    ServiceWrittenAdmin,
    SessionSearchAdmin,
    LargeTableAdmin,
    OperatorScopedAdmin,
):
    parking_path = "secured_parking"
    # With the revenue export linked (parking.admin_revenue).
    change_list_template = "admin/parking/parkingsession/change_list.html"
    list_display = [
        "id",
        "state_now",
        "driver",
        "secured_parking",
        "start_time",
        "duration",
        "amount_now",
        "payment_state",
        "tries_left",
    ]
    list_filter = [
        "state",
        ("payment__state", admin.ChoicesFieldListFilter),
        ("secured_parking", ParkingFilter),
        ("start_time", admin.DateFieldListFilter),
    ]
    list_select_related = ["driver", "secured_parking__tariff", "smart_key", "payment"]
    date_hierarchy = "start_time"
    ordering = ["-start_time", "-id"]
    # Sorting only by what an index already orders: anything else sorts a million rows.
    sortable_by = ["id", "start_time"]
    actions = ["finalize_sessions", "cancel_sessions", "grant_extra_tries", "refund_sessions"]
    inlines = [SessionAuditEntryInline]
    readonly_fields = [
        "smart_key_details",
        "payment_details",
        "refunds_made",
        "tariff_terms",
        "vat_rate",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["driver", "secured_parking", "type", "state"]}),
        (_("Time"), {"fields": ["start_time", "end_time"]}),
        (_("Tries left"), {"fields": ["entrance_remaining_tries", "exit_remaining_tries"]}),
        (
            _("Payment"),
            {
                "fields": [
                    "amount",
                    "currency",
                    "tariff_terms",
                    "vat_rate",
                    "payment_details",
                    "refunds_made",
                ]
            },
        ),
        (_("Smart key"), {"fields": ["smart_key", "smart_key_details"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("parking.operate_parkingsession")

    @admin.display(description=_("State"), ordering="state")
    def state_now(self, session: ParkingSession) -> str:
        if session.is_stale(timezone.now()):
            return gettext("Cancelled (did not enter in time)")
        return session.get_state_display()

    @admin.display(description=_("Payment"))
    def payment_state(self, session: ParkingSession) -> str:
        payment = session.payment
        if payment is None:
            return "—"
        if payment.disputed_at is not None:
            return gettext("%(state)s, disputed") % {"state": payment.get_state_display()}
        return payment.get_state_display()

    @admin.display(description=_("Card payment"))
    def payment_details(self, session: ParkingSession) -> str:
        payment = session.payment
        if payment is None:
            return "—"
        return gettext(
            "%(state)s: held %(held)s, captured %(captured)s, refunded %(refunded)s, "
            "outstanding %(outstanding)s %(currency)s; Stripe %(reference)s%(dispute)s"
        ) % {
            "state": payment.get_state_display(),
            "held": payment.hold_amount,
            "captured": payment.captured_amount,
            "refunded": payment.refunded_amount,
            "outstanding": payment.outstanding_amount,
            "currency": payment.currency,
            "reference": payment.hold_reference or "—",
            "dispute": gettext("; disputed (%(status)s)") % {"status": payment.dispute_status}
            if payment.disputed_at
            else "",
        }

    @admin.display(description=_("Duration"))
    def duration(self, session: ParkingSession) -> str:
        end = session.end_time or timezone.now()
        return readable_duration(end - session.start_time)

    @admin.display(description=_("Amount"))
    def amount_now(self, session: ParkingSession) -> str:
        return f"{session.amount_due(timezone.now())} {session.currency}"

    @admin.display(description=_("Tries left (entrance / exit)"))
    def tries_left(self, session: ParkingSession) -> str:
        return f"{session.entrance_remaining_tries} / {session.exit_remaining_tries}"

    @admin.display(description=_("Smart key"))
    def smart_key_link(self, session: ParkingSession) -> SafeString:
        url = reverse("admin:smart_keys_smartkey_change", args=[session.smart_key.pk])
        return format_html(
            '<a href="{}">{}</a>', url, gettext("Key #{id}").format(id=session.smart_key.pk)
        )

    @admin.display(description=_("Access points"))
    def key_access_points(self, session: ParkingSession) -> SafeString | None:
        return access_point_list(list(session.smart_key.access_points.all()))

    @admin.display(description=_("Key details"))
    def smart_key_details(self, session: ParkingSession) -> SafeString:
        return format_html(
            "{}<br>{}<br>{}",
            self.smart_key_link(session),
            gettext("Valid {window}").format(window=validity_window(session.smart_key)),
            self.key_access_points(session) or gettext("No access points"),
        )

    @admin.action(description=_("Finalize selected sessions…"), permissions=["operate"])
    def finalize_sessions(self, request: HttpRequest, queryset: QuerySet[ParkingSession]):
        return self._confirm_then_apply(
            request,
            queryset,
            service=back_office.finalize_by_operator,
            form_class=SessionActionForm,
            title=gettext("Finalize parking sessions"),
            explanation=gettext(
                "An active session pays what is due now, an exiting one what was fixed at the "
                "exit; both end now and their keys stop working."
            ),
            done=ngettext_lazy(
                "{count} session finalized: {ids}.", "{count} sessions finalized: {ids}.", "count"
            ),
        )

    @admin.action(description=_("Cancel selected sessions…"), permissions=["operate"])
    def cancel_sessions(self, request: HttpRequest, queryset: QuerySet[ParkingSession]):
        return self._confirm_then_apply(
            request,
            queryset,
            service=back_office.cancel_by_operator,
            form_class=SessionActionForm,
            title=gettext("Cancel parking sessions"),
            explanation=gettext(
                "Entering and active sessions end now with nothing due and their keys stop "
                "working. Exiting sessions are refused: their amount is fixed, finalize them."
            ),
            done=ngettext_lazy(
                "{count} session cancelled: {ids}.", "{count} sessions cancelled: {ids}.", "count"
            ),
        )

    @admin.action(description=_("Grant extra entrance/exit tries…"), permissions=["operate"])
    def grant_extra_tries(self, request: HttpRequest, queryset: QuerySet[ParkingSession]):
        return self._confirm_then_apply(
            request,
            queryset,
            service=back_office.grant_extra_tries,
            form_class=GrantTriesForm,
            title=gettext("Grant extra tries"),
            explanation=gettext(
                "For a driver stuck at a barrier with no tries left: the tries are added to "
                "what each open session has left."
            ),
            done=ngettext_lazy(
                "{count} session given extra tries: {ids}.",
                "{count} sessions given extra tries: {ids}.",
                "count",
            ),
        )

    def _confirm_then_apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[ParkingSession],
        *,
        service: Callable[..., ParkingSession],
        form_class: type[SessionActionForm],
        title: str,
        explanation: str,
        done: "StrPromise",
    ) -> TemplateResponse | None:
        """Show the selected sessions and ask for a reason; on confirmation, run ``service``."""
        selected = queryset.select_related("driver", "secured_parking__tariff")
        sessions = at_most_a_page(
            self, request, selected, too_many=gettext("Select at most {count} sessions at a time.")
        )
        if sessions is None:
            return None
        form = form_class(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            self._apply(request, sessions, service=service, options=form.cleaned_data, done=done)
            return None
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "opts": self.opts,
            "rows": [(session, session.amount_due(now)) for session in sessions],
            "selected": [session.pk for session in sessions],
            "form": form,
            "action": request.POST["action"],
        }
        return TemplateResponse(
            request, "admin/parking/parkingsession/action_confirmation.html", context
        )

    def _apply(
        self,
        request: HttpRequest,
        sessions: list[ParkingSession],
        *,
        service: Callable[..., ParkingSession],
        options: dict,
        done: "StrPromise",
    ) -> None:
        now = timezone.now()
        changed = []
        for session in sessions:
            # One transaction each: a refused session does not undo the others.
            try:
                service(session=session, actor=request.user, now=now, **options)
            except ParkingError as refusal:
                self.message_user(
                    request,
                    gettext("Session #{id}: {refusal}").format(
                        id=session.pk, refusal=refusal.message
                    ),
                    messages.ERROR,
                )
            else:
                changed.append(f"#{session.pk}")
        if changed:
            self.message_user(request, done.format(count=len(changed), ids=", ".join(changed)))


@admin.register(Debt)
class DebtAdmin(ServiceWrittenAdmin, SessionSearchAdmin, LargeTableAdmin, OperatorScopedAdmin):
    """Sessions whose card payment is outstanding: who owes what, since when, and why.
    Whoever may see the sessions may see their debts; each row leads to its session."""

    parking_path = "secured_parking"
    list_display = [
        "session_link",
        "driver",
        "secured_parking",
        "amount_owed",
        "outstanding_since",
        "failure",
        "end_time",
    ]
    list_display_links = None
    list_filter = [("secured_parking", ParkingFilter)]
    list_select_related = ["driver", "secured_parking", "payment"]
    # Read newest first from the payments' index of debts (payment_outstanding_since): a page
    # costs as many rows as there are debts, however many sessions and payments there are.
    ordering = ["-payment__outstanding_since", "-pk"]
    sortable_by = ["outstanding_since"]

    def get_queryset(self, request: HttpRequest) -> ParkingSessionQuerySet:
        # Debt's manager is ParkingSession's; django-stubs types it as a plain QuerySet.
        return cast(ParkingSessionQuerySet, super().get_queryset(request)).owing()

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("parking.view_parkingsession")

    @admin.display(description=_("Session"))
    def session_link(self, debt: Debt) -> SafeString:
        url = reverse("admin:parking_parkingsession_change", args=[debt.pk])
        return format_html('<a href="{}">#{}</a>', url, debt.pk)

    @admin.display(description=_("Amount owed"))
    def amount_owed(self, debt: Debt) -> str:
        assert debt.payment is not None  # owing() lists sessions with a payment only
        return f"{debt.payment.outstanding_amount} {debt.payment.currency}"

    @admin.display(description=_("Owed since"), ordering="payment__outstanding_since")
    def outstanding_since(self, debt: Debt) -> datetime | None:
        assert debt.payment is not None
        return debt.payment.outstanding_since

    @admin.display(description=_("Why it was not paid"))
    def failure(self, debt: Debt) -> str:
        assert debt.payment is not None
        payment = debt.payment
        if not payment.failure_code:
            return payment.failure_message or "—"
        return f"{payment.failure_message} ({payment.failure_code})"


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountsUserAdmin):
    """The accounts app's user admin, with deletion requests carried out: here, because
    a deletion must know the driver's sessions."""

    actions = ["delete_driver_accounts"]

    def has_delete_account_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.action(
        description=_("Carry out the selected drivers' account deletion requests…"),
        permissions=["delete_account"],
    )
    def delete_driver_accounts(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> TemplateResponse | None:
        """The API's account deletion, for a request made outside the app; asks for the
        request's reference first and audits each deletion."""
        users = at_most_a_page(
            self,
            request,
            queryset.order_by("pk"),
            too_many=gettext("Select at most {count} accounts at a time."),
        )
        if users is None:
            return None
        form = AccountDeletionForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            self._delete_accounts(request, users, reason=form.cleaned_data["reason"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Delete driver accounts"),
            "opts": self.opts,
            "users": users,
            "selected": [user.pk for user in users],
            "form": form,
            "action": request.POST["action"],
        }
        return TemplateResponse(request, "admin/accounts/user/delete_confirmation.html", context)

    def _delete_accounts(self, request: HttpRequest, users: list[User], *, reason: str) -> None:
        assert isinstance(request.user, User)  # the admin lets signed-in staff in only
        now = timezone.now()
        for user in users:
            # One transaction each: a refused account does not undo the others.
            try:
                deletion = back_office.delete_account_by_operator(
                    driver=user, actor=request.user, reason=reason, now=now
                )
            except DomainError as refusal:
                self.message_user(
                    request,
                    gettext("Account #{id}: {refusal}").format(id=user.pk, refusal=refusal.message),
                    messages.ERROR,
                )
                continue
            # Counts after a colon: no plural forms to get wrong in either language.
            self.message_user(
                request,
                gettext(
                    "Account #{id} deleted. Kept anonymised: parking sessions: {sessions}, "
                    "access-log entries: {entries}."
                ).format(
                    id=deletion.account_id,
                    sessions=deletion.anonymised.parking_sessions,
                    entries=deletion.anonymised.access_log_entries,
                ),
            )


def dashboard_view(request: AuthenticatedHttpRequest) -> TemplateResponse:
    """Per parking: open sessions against capacity, today's sessions and revenue, and the
    sessions started per hour over the last day; scoped like every other admin page."""
    context = {
        **admin.site.each_context(request),
        "title": gettext("Dashboard"),
        "dashboard": dashboard_for(user=request.user, now=timezone.now()),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
