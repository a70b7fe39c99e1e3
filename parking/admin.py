from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from parking.models import ParkingSession, SecuredParking, Tariff
from smart_keys.admin import AccessPointInline, access_point_list, mac_search_term
from smart_keys.models import SmartKey

WINDOW_FORMAT = "%Y-%m-%d %H:%M"


def validity_window(key: SmartKey) -> str:
    start = timezone.localtime(key.start_time).strftime(WINDOW_FORMAT)
    end = timezone.localtime(key.end_time).strftime(WINDOW_FORMAT)
    return f"{start} – {end} ({timezone.get_current_timezone_name()})"


class TariffInline(admin.StackedInline):
    model = Tariff
    can_delete = False
    min_num = 1
    max_num = 1


@admin.register(SecuredParking)
class SecuredParkingAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "address",
        "is_active",
        "is_online",
        "currency",
        "capacity",
        "access_point_count",
    ]
    list_filter = ["is_active", "is_online", "currency"]
    search_fields = ["name", "address"]
    ordering = ["name", "id"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [AccessPointInline, TariffInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SecuredParking]:
        return super().get_queryset(request).annotate(access_point_count=Count("access_points"))

    @admin.display(description="Access points", ordering="access_point_count")
    def access_point_count(self, parking: SecuredParking) -> int:
        return parking.access_point_count


@admin.register(ParkingSession)
class ParkingSessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "driver",
        "secured_parking",
        "state",
        "start_time",
        "end_time",
        "amount_with_currency",
        "smart_key_link",
        "key_access_points",
    ]
    list_filter = ["state", "type", "secured_parking"]
    list_select_related = ["driver", "secured_parking", "smart_key"]
    search_fields = [
        "id__exact",
        "driver__email",
        "secured_parking__name",
        "smart_key__access_points__mac_address",
    ]
    date_hierarchy = "start_time"
    ordering = ["-start_time", "-id"]
    readonly_fields = ["smart_key_details", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["driver", "secured_parking", "type", "state"]}),
        ("Time", {"fields": ["start_time", "end_time"]}),
        ("Tries left", {"fields": ["entrance_remaining_tries", "exit_remaining_tries"]}),
        ("Payment", {"fields": ["amount", "currency"]}),
        ("Smart key", {"fields": ["smart_key", "smart_key_details"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    # Sessions move only through the same services as the API, which guard state, tries
    # and amount; here operators look them up.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ParkingSession]:
        # One query for all the listed keys' barriers, however many rows the page shows.
        return super().get_queryset(request).prefetch_related("smart_key__access_points")

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))

    @admin.display(description="Amount", ordering="amount")
    def amount_with_currency(self, session: ParkingSession) -> str:
        return f"{session.amount} {session.currency}"

    @admin.display(description="Smart key")
    def smart_key_link(self, session: ParkingSession) -> SafeString:
        url = reverse("admin:smart_keys_smartkey_change", args=[session.smart_key.pk])
        return format_html('<a href="{}">Key #{}</a>', url, session.smart_key.pk)

    @admin.display(description="Access points")
    def key_access_points(self, session: ParkingSession) -> SafeString | None:
        return access_point_list(list(session.smart_key.access_points.all()))

    @admin.display(description="Key details")
    def smart_key_details(self, session: ParkingSession) -> SafeString:
        return format_html(
            "{}<br>Valid {}<br>{}",
            self.smart_key_link(session),
            validity_window(session.smart_key),
            self.key_access_points(session) or "No access points",
        )
