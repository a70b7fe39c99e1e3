from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from smart_keys.mac_addresses import normalize_mac_address
from smart_keys.models import AccessPoint, SmartKey


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


@admin.register(AccessPoint)
class AccessPointAdmin(admin.ModelAdmin):
    list_display = ["mac_address", "name", "direction", "secured_parking", "created_at"]
    list_filter = ["direction", "secured_parking"]
    list_select_related = ["secured_parking"]
    search_fields = ["mac_address", "name", "secured_parking__name"]
    ordering = ["secured_parking__name", "direction", "mac_address"]
    readonly_fields = ["created_at"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, mac_search_term(search_term))


@admin.register(SmartKey)
class SmartKeyAdmin(admin.ModelAdmin):
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
    list_filter = ["type", "secured_parking"]
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

    # Keys are issued and changed by the parking-session workflow, never by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SmartKey]:
        # Here, not in list_select_related: the admin ignores that once the queryset has
        # a select_related, and autocomplete results need the driver for str(key) too.
        return (
            super()
            .get_queryset(request)
            .select_related("driver", "secured_parking", "parking_session")
            .annotate(access_point_count=Count("access_points"))
        )

    @admin.display(description="Access points", ordering="access_point_count")
    def access_point_count(self, key: SmartKey) -> int:
        return key.access_point_count

    @admin.display(description="Access points")
    def access_points_list(self, key: SmartKey) -> SafeString | None:
        return access_point_list(list(key.access_points.all()))

    @admin.display(description="Parking session")
    def parking_session_link(self, key: SmartKey) -> SafeString | None:
        session = getattr(key, "parking_session", None)
        if session is None:
            return None
        url = reverse("admin:parking_parkingsession_change", args=[session.pk])
        return format_html('<a href="{}">{}</a>', url, session)
