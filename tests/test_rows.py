"""core.rows: raw rows of the hot reads become model instances as the ORM would load them."""

import pytest
from django.db import connection
from django.db.models.signals import post_init, pre_init
from oauth2_provider.models import AccessToken

from accounts.models import User
from core.rows import fetch_grouped_row, model_instance
from parking.models import ParkingSession, SecuredParking, Tariff
from smart_keys.models import AccessPoint, SmartKey
from tests.factories import ParkingSessionFactory

pytestmark = pytest.mark.django_db

BUILT_FROM_ROWS = (ParkingSession, SecuredParking, Tariff, SmartKey, AccessPoint, AccessToken, User)


@pytest.mark.parametrize("model", BUILT_FROM_ROWS)
def test_no_model_built_from_rows_has_init_signal_receivers(model):
    # model_instance skips __init__ and with it these signals.
    assert not pre_init.has_listeners(model)
    assert not post_init.has_listeners(model)


def test_an_instance_from_a_row_equals_the_one_the_orm_loads():
    stored = ParkingSessionFactory()
    loaded = ParkingSession.objects.get(pk=stored.pk)
    values = {field.attname: getattr(loaded, field.attname) for field in loaded._meta.fields}

    built = model_instance(ParkingSession, values)

    assert built == loaded
    assert {name: getattr(built, name) for name in values} == values
    assert not built._state.adding and built._state.db == "default"
    assert built.get_deferred_fields() == set()


def test_fields_a_row_lacks_are_deferred_and_read_on_access():
    stored = ParkingSessionFactory()

    built = model_instance(ParkingSession, {"id": stored.pk, "state": stored.state})

    assert "amount" in built.get_deferred_fields()
    assert built.amount == stored.amount  # one query, as for a deferred field


def test_a_grouped_row_is_keyed_by_its_column_names():
    sql = 'SELECT 1 AS "a.x", 2 AS "b.y", 3 AS "a.z" WHERE %s'
    with connection.cursor() as cursor:
        row = fetch_grouped_row(cursor, sql, [True])
        no_row = fetch_grouped_row(cursor, sql, [False])

    assert row == {"a": {"x": 1, "z": 3}, "b": {"y": 2}}
    assert no_row == {}
