"""Operator staff: a membership says which operator's parkings they run; the group gives
them the model permissions to do it. The admin narrows every list to their operator."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from accounts.models import User
from parking.models import Operator, OperatorMembership

OPERATOR_STAFF_GROUP = "Operator staff"
OPERATOR_STAFF_PERMISSIONS = {
    "parking": [
        "view_securedparking",
        "add_securedparking",
        "change_securedparking",
        "view_tariff",
        "add_tariff",
        "change_tariff",
        "view_parkingsession",
        "operate_parkingsession",
        "view_sessionauditentry",
        "view_anomaly",
    ],
    "smart_keys": [
        "view_accesspoint",
        "add_accesspoint",
        "change_accesspoint",
        "delete_accesspoint",
        "view_smartkey",
        "view_accesslogentry",
        "view_accesspointkey",
        "view_passagerecord",
        # Key pairs are read-only in the admin; "change" is what its rotate action asks for.
        "view_parkingkeypair",
        "change_parkingkeypair",
        "view_barriergateway",
        "add_barriergateway",
        "change_barriergateway",
    ],
}


@transaction.atomic
def add_operator_staff(*, user: User, operator: Operator) -> OperatorMembership:
    """Let ``user`` run ``operator``'s parkings in the back office, and nothing else."""
    membership, _created = OperatorMembership.objects.get_or_create(user=user, operator=operator)
    if not user.is_staff:
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.is_staff = True
    user.groups.add(sync_operator_staff_group())
    return membership


def sync_operator_staff_group() -> Group:
    """The operator staff group, with exactly ``OPERATOR_STAFF_PERMISSIONS``.

    Permissions of models that are not migrated yet are skipped; the next call adds them.
    """
    group, _created = Group.objects.get_or_create(name=OPERATOR_STAFF_GROUP)
    wanted = Q(pk__in=[])
    for app_label, codenames in OPERATOR_STAFF_PERMISSIONS.items():
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    group.permissions.set(Permission.objects.filter(wanted))
    return group
