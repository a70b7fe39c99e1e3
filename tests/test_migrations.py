"""Migrations match the models, indexes on tables that grow to millions of rows are built
without locking out writes, and data migrations carry existing rows over."""

from datetime import timedelta
from importlib import import_module
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from smart_keys.models import BarrierGateway, KeyPairState, ParkingKeyPair
from smart_keys.secrets_at_rest import encrypt_secret
from tests.factories import BarrierGatewayFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


def test_every_model_change_has_its_migration():
    output = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output)
    except SystemExit:
        pytest.fail(f"models and migrations differ:\n{output.getvalue()}")


def index_sql(app_label: str, migration: str) -> list[str]:
    sql = StringIO()
    call_command("sqlmigrate", app_label, migration, stdout=sql)
    return [line for line in sql.getvalue().splitlines() if "CREATE INDEX" in line]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # CONCURRENTLY refuses to run inside a transaction
def test_back_office_indexes_are_built_concurrently_on_postgresql():
    statements = index_sql("smart_keys", "0003")

    assert len(statements) == 3
    assert all(line.startswith("CREATE INDEX CONCURRENTLY") for line in statements)


class RecordingSchemaEditor:
    def __init__(self, vendor: str) -> None:
        self.connection = SimpleNamespace(vendor=vendor, alias="default", in_atomic_block=False)
        self.calls = []

    def add_index(self, model, index, **options) -> None:
        self.calls.append((index.name, options))


@pytest.mark.parametrize(
    ("vendor", "options"), [("postgresql", {"concurrently": True}), ("sqlite", {})]
)
def test_the_operation_is_concurrent_on_postgresql_only(vendor, options):
    loader = MigrationLoader(None)
    operation = loader.get_migration("smart_keys", "0003_back_office_list_indexes").operations[0]
    state = loader.project_state(("smart_keys", "0002_access_commands_gateways_access_log"))
    to_state = state.clone()
    operation.state_forwards("smart_keys", to_state)
    editor = RecordingSchemaEditor(vendor)

    operation.database_forwards("smart_keys", editor, state, to_state)

    assert editor.calls == [(operation.index.name, options)]


@pytest.mark.django_db(transaction=True)
def test_existing_key_pairs_get_their_state_and_sign_from_their_creation():
    parking = SecuredParkingFactory()
    executor = MigrationExecutor(connection)
    before = [("smart_keys", "0004_smart_key_id_with_parking")]
    executor.migrate(before)
    old_model = executor.loader.project_state(before).apps.get_model("smart_keys", "ParkingKeyPair")
    now = timezone.now()
    common = {"secured_parking_id": parking.pk, "encrypted_private_key": "x", "public_key": "0"}
    old_model.objects.create(key_id="0000000a", created_at=now - timedelta(days=1),
                             retired_at=now, accepted_until=now, **common)  # fmt: skip
    old_model.objects.create(key_id="0000000b", created_at=now, **common)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = ParkingKeyPair.objects.order_by("key_id").values_list("state", "signs_from")
    assert list(rows) == [
        (KeyPairState.RETIRED, now - timedelta(days=1)),
        (KeyPairState.CURRENT, now),
    ]


def test_stored_gateway_credentials_are_bound_to_their_url():
    migration = import_module("smart_keys.migrations.0008_gateway_credential_bound_to_url")
    gateway = BarrierGatewayFactory(url="https://gateway.example.com/open", credential="")
    BarrierGateway.objects.filter(pk=gateway.pk).update(
        encrypted_credential=encrypt_secret(b"stored-before")
    )

    migration.bind_to_url(django_apps, None)

    gateway.refresh_from_db()
    assert gateway.credential == "stored-before"
    gateway.url = "https://elsewhere.example.com/open"
    assert gateway.credential == ""
