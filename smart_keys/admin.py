from collections.abc import Callable, Sequence

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, Prefetch, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import OperatorScopedAdmin, ParkingFilter, ServiceWrittenAdmin
from core.admin_large_tables import LargeTableAdmin
from core.errors import DomainError
from smart_keys.mac_addresses import normalize_mac_address
from smart_keys.models import (
    AccessLogEntry,
    AccessPoint,
    AccessPointKey,
    BarrierGateway,
    ParkingKeyPair,
    PassageRecord,
    SmartKey,
)
from smart_keys.passages import parse_barrier_key, register_barrier_key
from smart_keys.services import (
    rotate_leaked_key_pair,
    rotate_parking_key_pair,
    switch_to_next_key_pair,
)


def mac_search_term(search_term: str) -> str:
    """A search for a whole MAC in any spelling looks for the stored ``AA:BB:CC:DD:EE:FF``."""
    try:
        return normalize_mac_address(search_term)
    except ValidationError:
        return search_term


def access_point_list(access_points: list[AccessPoint]) -> SafeString | None:
    """One line per barrier: direction, MAC and name, for list and change pages."""
    if not access_points:
        return None  # the admin shows its "empty" dash
    return format_html_join(
        mark_safe("<br>"),
        "{} {} {}",
        (
            (ap.get_direction_display(), ap.mac_address, f"({ap.name})" if ap.name else "")
            for ap in access_points
        ),
    )


class AccessPointInline(admin.TabularInline):
    """Barriers on the secured parking change page."""

    model = AccessPoint
    fields = ["name", "direction", "mac_address", "created_at"]
    readonly_fields = ["created_at"]
    extra = 1
    show_change_link = True


class AccessPointForm(forms.ModelForm):
    barrier_public_key = forms.CharField(
        label=_("Barrier public key"),
        required=False,
        strip=True,
        help_text=_(
            "The Ed25519 public key the barrier made for itself, in hex (64 digits): its "
            "passage records are verified with it. Entering another one replaces it; the "
            "old key still verifies the records it signed before."
        ),
    )
    old_key_compromised = forms.BooleanField(
        label=_("The old key may be compromised"),
        required=False,
        help_text=_(
            "The barrier was pulled off or its key read out: refuse every record of the "
            "old key from now on, also those signed before."
        ),
    )

    class Meta:
        model = AccessPoint
        fields = ["secured_parking", "name", "direction", "mac_address"]

    def clean_barrier_public_key(self) -> str:
        text = self.cleaned_data["barrier_public_key"]
        if not text:
            return ""
        try:
            key = parse_barrier_key(text)
        except DomainError as refusal:
            raise ValidationError(refusal.message) from refusal
        holder = AccessPointKey.objects.elsewhere(key, self.instance.pk).first()
        if holder is not None:
            raise ValidationError(
                gettext("This public key is already registered on access point #{id}.").format(
                    id=holder.access_point_id
                )
            )
        return key


class AccessPointKeyInline(admin.TabularInline):
    """The barrier's keys, newest first: written by registration only."""

    model = AccessPointKey
    fields = readonly_fields = (
        "key_id",
        "public_key",
        "registered_at",
        "replaced_at",
        "accepted_until",
        "received_through",
        "clock_offset",
        "clock_estimated_at",
    )
    extra = 0
    can_delete = False
    verbose_name_plural = _("Barrier keys")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ClockFilter(admin.SimpleListFilter):
    """Barriers by their current key's clock estimate (docs/passage-record.md)."""

    title = _("clock")
    parameter_name = "clock"

    def lookups(self, request, model_admin):
        return [
            ("drifting", _("Drifting")),
            ("right", _("Within tolerance")),
            ("unknown", _("Not known yet")),
        ]

    def queryset(self, request, queryset):
        tolerance = settings.BARRIER_CLOCK_TOLERANCE.total_seconds()
        current = AccessPointKey.objects.current()
        # The queryset side of AccessPointKey.is_drifting.
        drifting = current.filter(clock_offset__gt=tolerance)
        chosen = {
            "drifting": drifting,
            "right": current.filter(clock_offset__isnull=False).exclude(pk__in=drifting),
            "unknown": current.filter(clock_offset__isnull=True),
        }.get(self.value() or "")
        if chosen is None:
            return queryset
        return queryset.filter(pk__in=chosen.values("access_point_id"))


@admin.register(AccessPoint)
class AccessPointAdmin(OperatorScopedAdmin):
    parking_path = "secured_parking"
    form = AccessPointForm
    list_display = [
        "mac_address",
        "name",
        "direction",
        "secured_parking",
        "barrier_key",
        "clock",
        "created_at",
    ]
    list_filter = ["direction", ClockFilter, ("secured_parking", ParkingFilter)]
    list_select_related = ["secured_parking"]
    search_fields = ["mac_address", "name", "secured_parking__name"]
    ordering = ["secured_parking__name", "direction", "mac_address"]
    readonly_fields = ["created_at"]
    inlines = [AccessPointKeyInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessPoint]:
        current = AccessPointKey.objects.current().order_by()
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("barrier_keys", queryset=current, to_attr="current_keys"))
        )

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))

    @admin.display(description=_("Barrier key"))
    def barrier_key(self, access_point: AccessPoint) -> str | None:
        keys = getattr(access_point, "current_keys", [])
        return keys[0].key_id if keys else None

    @admin.display(description=_("Clock"))
    def clock(self, access_point: AccessPoint) -> SafeString | None:
        keys = getattr(access_point, "current_keys", [])
        if not keys or keys[0].clock_offset is None:
            return None
        key = keys[0]
        text = gettext("{offset:+d} s").format(offset=key.clock_offset)
        if key.is_drifting(settings.BARRIER_CLOCK_TOLERANCE):
            return format_html("<strong>{}</strong> {}", text, gettext("drifting"))
        return format_html("{}", text)

    def save_model(self, request, obj: AccessPoint, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        public_key = form.cleaned_data.get("barrier_public_key")
        compromised = form.cleaned_data.get("old_key_compromised", False)
        if public_key or compromised:
            self._register(request, obj, public_key, compromised)

    def _register(
        self, request: HttpRequest, access_point: AccessPoint, public_key: str, compromised: bool
    ) -> None:
        current = AccessPointKey.objects.current().filter(access_point=access_point).first()
        key = public_key or (current.public_key if current else "")
        if not key:
            return
        try:
            registered = register_barrier_key(
                access_point=access_point,
                public_key=key,
                now=timezone.now(),
                compromised=compromised,
            )
        except DomainError as refusal:
            self.message_user(request, str(refusal.message), messages.ERROR)
            return
        self.message_user(
            request,
            gettext("{barrier}: records are verified with key {key}.").format(
                barrier=access_point, key=registered.key_id
            )
            if registered.is_current
            else gettext("{barrier}: key {key} is trusted no longer.").format(
                barrier=access_point, key=registered.key_id
            ),
            messages.SUCCESS,
        )


@admin.register(SmartKey)
class SmartKeyAdmin(ServiceWrittenAdmin, LargeTableAdmin, OperatorScopedAdmin):
    parking_path = "secured_parking"
    list_display = [
        "id",
        "driver",
        "secured_parking",
        "type",
        "start_time",
        "end_time",
        "access_point_count",
        "parking_session_link",
    ]
    list_filter = ["type", ("secured_parking", ParkingFilter)]
    search_fields = ["id__exact", "driver__email", "secured_parking__name"]
    date_hierarchy = "start_time"
    ordering = ["-start_time", "-id"]
    fields = [
        "driver",
        "secured_parking",
        "type",
        "description",
        ("start_time", "end_time"),
        "access_command",
        "access_points_list",
        "parking_session_link",
        "created_at",
    ]
    readonly_fields = ["access_points_list", "parking_session_link", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SmartKey]:
        # Here, not in list_select_related: the admin ignores that once the queryset has
        # a select_related, and autocomplete results need the driver for str(key) too.
        return (
            super()
            .get_queryset(request)
            .select_related("driver", "secured_parking", "parking_session")
            # Prefetched, not a COUNT annotation: its GROUP BY would aggregate every key
            # before the page's LIMIT, one per session ever started.
            .prefetch_related("access_points")
        )

    @admin.display(description=_("Access points"))
    def access_point_count(self, key: SmartKey) -> int:
        return len(key.access_points.all())

    @admin.display(description=_("Access points"))
    def access_points_list(self, key: SmartKey) -> SafeString | None:
        return access_point_list(list(key.access_points.all()))

    @admin.display(description=_("Parking session"))
    def parking_session_link(self, key: SmartKey) -> SafeString | None:
        session = getattr(key, "parking_session", None)
        if session is None:
            return None
        url = reverse("admin:parking_parkingsession_change", args=[session.pk])
        return format_html('<a href="{}">{}</a>', url, session)


def rotate_routinely(
    modeladmin: admin.ModelAdmin, request: HttpRequest, parkings: Sequence[Model]
) -> None:
    """The routine rotation of each parking's key pair, with what the operator does next;
    from the key pair list and from the parking list."""
    now = timezone.now()
    for parking in parkings:
        try:
            key_pair = rotate_parking_key_pair(secured_parking_id=parking.pk, now=now)
        except DomainError as refusal:
            modeladmin.message_user(
                request,
                gettext("{parking}: {refusal}").format(parking=parking, refusal=refusal.message),
                messages.WARNING,
            )
            continue
        if key_pair.is_current:
            text = gettext(
                "{parking}: first key {key}, signing now. Provision the barriers with it now "
                "(`manage.py export_barrier_keys`)."
            )
        else:
            text = gettext(
                "{parking}: next key {key}, signing from {signs_from} (or when switched to). "
                "Provision the barriers with it now (`manage.py export_barrier_keys`)."
            )
        signs_from = timezone.localtime(key_pair.signs_from).strftime("%Y-%m-%d %H:%M")
        modeladmin.message_user(
            request,
            text.format(parking=parking, key=key_pair.key_id, signs_from=signs_from),
            messages.SUCCESS,
        )


@admin.register(ParkingKeyPair)
class ParkingKeyPairAdmin(ServiceWrittenAdmin, OperatorScopedAdmin):
    """Signing keys, read-only: made on first use, replaced only by rotation. Barriers are
    provisioned with them, so deleting a row could not un-trust a key there anyway."""

    parking_path = "secured_parking"
    list_display = [
        "key_id",
        "secured_parking",
        "status",
        "created_at",
        "signs_from",
        "retired_at",
        "accepted_until",
    ]
    list_filter = [("secured_parking", ParkingFilter), "state"]
    list_select_related = ["secured_parking"]
    search_fields = ["key_id", "public_key", "secured_parking__name"]
    ordering = ["secured_parking__name", "-created_at", "-id"]
    fields = [
        "secured_parking",
        "key_id",
        "public_key",
        "state",
        "created_at",
        "signs_from",
        "retired_at",
        "accepted_until",
    ]
    actions = ["rotate", "switch_to_next", "rotate_leaked"]

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("smart_keys.change_parkingkeypair")

    @admin.display(description=_("Status"))
    def status(self, key_pair: ParkingKeyPair) -> str:
        now = timezone.now()
        if key_pair.signs_at(now):
            return gettext("current (signing)")
        if key_pair.is_next_at(now):
            return gettext("next (published, not signing yet)")
        if key_pair.is_trusted_at(now):
            return gettext("previous (still trusted)")
        return gettext("retired")

    @admin.action(
        description=_("Rotate the parkings' key pairs (routine: publish the next key)"),
        permissions=["rotate"],
    )
    def rotate(self, request: HttpRequest, queryset: QuerySet[ParkingKeyPair]) -> None:
        rotate_routinely(self, request, self._parkings(queryset))

    @admin.action(description=_("Switch to the next key pair now…"), permissions=["rotate"])
    def switch_to_next(
        self, request: HttpRequest, queryset: QuerySet[ParkingKeyPair]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(
            request,
            queryset,
            service=switch_to_next_key_pair,
            title=gettext("Switch to the next key pair now"),
            explanation=gettext(
                "The next key signs from now on, before its planned switch. Barriers not yet "
                "provisioned with it will refuse every new command until they are. The key it "
                "replaces keeps verifying for the overlap."
            ),
        )

    @admin.action(
        description=_("Emergency rotation: the private key leaked…"), permissions=["rotate"]
    )
    def rotate_leaked(
        self, request: HttpRequest, queryset: QuerySet[ParkingKeyPair]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(
            request,
            queryset,
            service=rotate_leaked_key_pair,
            title=gettext("Emergency rotation"),
            explanation=gettext(
                "For a leaked private key only. A new key signs at once and every other key "
                "of the parking, the next one included, is trusted no longer, also by "
                "commands already in drivers' phones. Every barrier refuses every command "
                "until it is provisioned with the new key: do it right away."
            ),
        )

    def _parkings(self, queryset: QuerySet[ParkingKeyPair]) -> list[Model]:
        parkings = {kp.secured_parking for kp in queryset.select_related("secured_parking")}
        return sorted(parkings, key=lambda parking: parking.pk)

    def _confirm_then_apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[ParkingKeyPair],
        *,
        service: Callable[..., ParkingKeyPair],
        title: str,
        explanation: str,
    ) -> TemplateResponse | None:
        """List the parkings and the keys they trust; on confirmation, run ``service``."""
        parkings = self._parkings(queryset)
        if request.POST.get("confirm") == "yes":
            self._apply(request, parkings, service=service)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "opts": self.opts,
            "rows": [(parking, self._trusted_keys(parking.pk)) for parking in parkings],
            "selected": list(queryset.values_list("pk", flat=True)),
            "action": request.POST["action"],
        }
        return TemplateResponse(
            request, "admin/smart_keys/parkingkeypair/action_confirmation.html", context
        )

    def _trusted_keys(self, secured_parking_id: int) -> list[str]:
        trusted = ParkingKeyPair.objects.trusted(timezone.now())
        key_pairs = trusted.filter(secured_parking_id=secured_parking_id)
        return [f"{key_pair.key_id}: {self.status(key_pair)}" for key_pair in key_pairs]

    def _apply(
        self,
        request: HttpRequest,
        parkings: list[Model],
        *,
        service: Callable[..., ParkingKeyPair],
    ) -> None:
        now = timezone.now()
        for parking in parkings:
            try:
                key_pair = service(secured_parking_id=parking.pk, now=now)
            except DomainError as refusal:
                self.message_user(
                    request,
                    gettext("{parking}: {refusal}").format(
                        parking=parking, refusal=refusal.message
                    ),
                    messages.ERROR,
                )
                continue
            self.message_user(
                request,
                gettext(
                    "{parking}: key {key} signs from now. Provision the barriers with it "
                    "(`manage.py export_barrier_keys`)."
                ).format(parking=parking, key=key_pair.key_id),
                messages.SUCCESS,
            )


class BarrierGatewayForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text=_("Open requests are POSTed here: https, on a public address."),
    )
    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        label=_("Credential"),
        help_text=_(
            "Bearer token the gateway expects; stored encrypted. Leave empty to keep "
            "the stored one, unless the URL changes."
        ),
    )

    class Meta:
        model = BarrierGateway
        fields = ["secured_parking", "url", "credential", "is_enabled"]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        # The stored credential was meant for the old host; sending it to the new one would
        # hand it to whoever runs that host.
        if (
            self.instance.encrypted_credential
            and "url" in self.changed_data
            and not cleaned.get("credential")
        ):
            self.add_error(
                "credential",
                "The URL changed: enter the credential for the new URL (the stored one is "
                "only ever sent to the URL it was entered for).",
            )
        return cleaned


@admin.register(BarrierGateway)
class BarrierGatewayAdmin(OperatorScopedAdmin):
    """Where an online parking's barriers are opened over HTTP (docs/barrier-gateway.md)."""

    parking_path = "secured_parking"
    form = BarrierGatewayForm
    list_display = ["secured_parking", "url", "is_enabled", "has_credential", "updated_at"]
    list_filter = ["is_enabled", ("secured_parking", ParkingFilter)]
    list_select_related = ["secured_parking"]
    search_fields = ["secured_parking__name", "url"]
    ordering = ["secured_parking__name"]

    @admin.display(description=_("Credential"), boolean=True)
    def has_credential(self, gateway: BarrierGateway) -> bool:
        return bool(gateway.encrypted_credential)

    def save_model(self, request, obj: BarrierGateway, form, change: bool) -> None:
        if form.cleaned_data.get("credential"):
            obj.credential = form.cleaned_data["credential"]
        super().save_model(request, obj, form, change)


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ServiceWrittenAdmin, LargeTableAdmin, OperatorScopedAdmin):
    """Issued commands, tries and open requests, as the services recorded them: read-only."""

    parking_path = "secured_parking"
    list_display = [
        "created_at",
        "event",
        "result",
        "direction",
        "driver",
        "secured_parking",
        "parking_session_link",
        "access_point",
        "detail",
    ]
    list_filter = [
        "event",
        "result",
        "direction",
        ("secured_parking", ParkingFilter),
    ]
    list_select_related = ["driver", "secured_parking", "access_point"]
    search_fields = [
        "driver__email",
        "parking_session__id__exact",
        "smart_key__id__exact",
        "access_point__mac_address",
        "detail",
    ]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    # Counting a long log on every page costs more than it tells (see LargeTableAdmin).

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))

    @admin.display(description=_("Parking session"), ordering="parking_session")
    def parking_session_link(self, entry: AccessLogEntry) -> SafeString | None:
        if entry.parking_session_id is None:
            return None
        url = reverse("admin:parking_parkingsession_change", args=[entry.parking_session_id])
        return format_html('<a href="{}">#{}</a>', url, entry.parking_session_id)


@admin.register(PassageRecord)
class PassageRecordAdmin(ServiceWrittenAdmin, LargeTableAdmin, OperatorScopedAdmin):
    """What barriers signed for their openings, as phones relayed it: read-only evidence."""

    parking_path = "secured_parking"
    list_display = [
        "passed_at",
        "direction",
        "access_point",
        "sequence",
        "named_session_id",
        "command_counter",
        "barrier_time",
        "received_at",
    ]
    list_filter = ["direction", ("secured_parking", ParkingFilter)]
    list_select_related = ["access_point"]
    search_fields = [
        "named_session_id__exact",
        "named_smart_key_id__exact",
        "access_point__mac_address",
    ]
    date_hierarchy = "passed_at"
    ordering = ["-passed_at", "-id"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))
