"""Admin base classes: operator staff see and change only their own operator's rows; rows
that only services write are read-only.

Every scoped admin names the path from its model to the secured parking (``parking_path``).
Lists, direct URLs, actions (their queryset comes from the list), foreign-key choices and
the parking filter all go through it, so there is one rule to get right. A staff member's
parkings are those of the operators they are a member of (``user.operator_memberships``).
"""

import weakref
from typing import Any

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest


class ServiceWrittenAdmin(admin.ModelAdmin):
    """Rows only the services write (sessions, keys, key pairs, the access log): operators
    look them up and act through admin actions, never through an add, change or delete form."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperatorScopedAdmin(admin.ModelAdmin):
    parking_path: str  # "pk" on the parking's own admin

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scoped(super().get_queryset(request), request)

    def scoped(self, queryset: QuerySet, request: HttpRequest) -> QuerySet:
        """``queryset`` narrowed to the rows of the parkings ``request.user`` runs."""
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.parking_path}__in": staff_parking_ids(request)})

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Model:
        # The admin would redirect to its index with "doesn't exist"; a plain 404 is what
        # every other view answers for a row the caller may not see.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        return obj

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A choice of another scoped model (a parking, say) offers only the caller's rows.
        related_admin = _admin_of(self.admin_site, db_field.related_model)
        if isinstance(related_admin, OperatorScopedAdmin) and "queryset" not in kwargs:
            kwargs["queryset"] = related_admin.scoped(
                db_field.related_model._default_manager.all(), request
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _admin_of(site: admin.AdminSite, model: type[Model]) -> admin.ModelAdmin | None:
    try:
        return site.get_model_admin(model)
    except NotRegistered:
        return None


# Per request, for as long as the request lives.
_staff_parking_ids: weakref.WeakKeyDictionary[HttpRequest, list[int]] = weakref.WeakKeyDictionary()


def staff_parking_ids(request: HttpRequest) -> list[int]:
    """The ids of the parkings the signed-in staff member runs, read once per request.

    A list of ids rather than a subquery: PostgreSQL then estimates from its statistics
    how many sessions they hold, and reads a page from the right index; against a subquery
    it guesses, and at a million rows a wrong guess is a sort of the whole table.
    """
    user = request.user
    if not user.is_authenticated:
        return []  # the admin lets only signed-in staff in; anyone else runs no parking
    if request not in _staff_parking_ids:
        parkings = user.operator_memberships.filter(
            operator__secured_parkings__isnull=False
        ).values_list("operator__secured_parkings", flat=True)
        _staff_parking_ids[request] = list(parkings.order_by())
    return _staff_parking_ids[request]


class ParkingFilter(admin.RelatedFieldListFilter):
    """Filter by secured parking, offering only the parkings the user runs."""

    # django-stubs types the choices' ids as str; Django's own are the primary keys.
    def field_choices(  # type: ignore[override]
        self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> list[tuple[Any, str]]:
        parkings = field.related_model._default_manager.all()
        if not request.user.is_superuser:
            parkings = parkings.filter(pk__in=staff_parking_ids(request))
        return [(parking.pk, str(parking)) for parking in parkings]
