"""Helpers shared by the back-office (admin) tests."""

from django.db.models import Model
from django.test import Client
from django.urls import reverse

from parking.models import Operator
from tests.factories import OperatorStaffFactory


def changelist_url(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj: Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add_url(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def staff_client(operator: Operator) -> Client:
    """A browser session of a new staff member of ``operator``."""
    client = Client()
    client.force_login(OperatorStaffFactory(operator=operator))
    return client
