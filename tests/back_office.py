"""Helpers shared by the back-office (admin) tests."""

from django.db.models import Model
from django.test import Client
from django.urls import reverse

from parking.models import Operator, SecuredParking
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


def parking_form_data(parking: SecuredParking, *access_points: dict) -> dict:
    """The POST of the parking change page, with ``access_points`` as new inline rows."""
    data = {
        "name": parking.name,
        "description": parking.description,
        "address": parking.address,
        "latitude": "",
        "longitude": "",
        "is_active": "on",
        "currency": parking.currency,
        "capacity": parking.capacity,
        "entrance_tries": parking.entrance_tries,
        "exit_tries": parking.exit_tries,
        "access_points-TOTAL_FORMS": len(access_points),
        "access_points-INITIAL_FORMS": 0,
        "access_points-MIN_NUM_FORMS": 0,
        "access_points-MAX_NUM_FORMS": 1000,
        "tariff-TOTAL_FORMS": 1,
        "tariff-INITIAL_FORMS": 1,
        "tariff-MIN_NUM_FORMS": 1,
        "tariff-MAX_NUM_FORMS": 1,
        "tariff-0-secured_parking": parking.pk,
        "tariff-0-free_minutes": parking.tariff.free_minutes,
        "tariff-0-period_minutes": parking.tariff.period_minutes,
        "tariff-0-price_per_period": parking.tariff.price_per_period,
        "tariff-0-daily_cap": parking.tariff.daily_cap,
    }
    for index, access_point in enumerate(access_points):
        data.update({f"access_points-{index}-{k}": v for k, v in access_point.items()})
    return data
