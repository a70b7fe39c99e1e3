"""Operator staff see and change only their own operator's rows in the admin; superusers all.

Every scoped admin names the path from its model to the secured parking (``parking_path``).
Lists, direct URLs, actions (their queryset comes from the list), foreign-key choices and
the parking filter all go through it, so there is one rule to get right.
"""

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from parking.models import Operator, SecuredParking
from parking.selectors import back_office_parkings


class ServiceWrittenAdmin(admin.ModelAdmin):
    """Rows only the services write (sessions, keys, key pairs, the access log): operators
    look them up and act through admin actions, never through an add, change or delete form."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class OperatorScopedAdmin(admin.ModelAdmin):
    parking_path: str  # "pk" on the parking's own admin

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.parking_path}__in": staff_parking_ids(request)})

    def get_object(self, request: HttpRequest, object_id: str, from_field=None) -> Model:
        # The admin would redirect to its index with "doesn't exist"; a plain 404 is what
        # every other view answers for a row the caller may not see.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        return obj

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if not request.user.is_superuser:
            if db_field.related_model is SecuredParking:
                kwargs["queryset"] = SecuredParking.objects.run_by(request.user)
            elif db_field.related_model is Operator:
                # Nullable in the table for old rows, never left out by operator staff.
                kwargs["queryset"] = Operator.objects.staffed_by(request.user)
                kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def staff_parking_ids(request: HttpRequest) -> list[int]:
    """The ids of the parkings the signed-in staff member runs, read once per request.

    A list of ids rather than a subquery: PostgreSQL then estimates from its statistics
    how many sessions they hold, and reads a page from the right index; against a subquery
    it guesses, and at a million rows a wrong guess is a sort of the whole table.
    """
    if not hasattr(request, "_staff_parking_ids"):
        parkings = SecuredParking.objects.run_by(request.user).order_by()
        request._staff_parking_ids = list(parkings.values_list("pk", flat=True))
    return request._staff_parking_ids


class ParkingFilter(admin.RelatedFieldListFilter):
    """Filter by secured parking, offering only the parkings the user runs."""

    def field_choices(self, field, request: HttpRequest, model_admin) -> list[tuple[int, str]]:
        return [(parking.pk, str(parking)) for parking in back_office_parkings(request.user)]
