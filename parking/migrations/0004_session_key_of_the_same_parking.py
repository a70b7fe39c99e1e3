from django.db import migrations

CONSTRAINT = "session_key_of_the_same_parking"


def add_composite_foreign_key(apps, schema_editor):
    # Django has no composite foreign key; PostgreSQL (CI, production) gets it in SQL.
    # NOT VALID, then VALIDATE: existing rows are checked without blocking writes meanwhile.
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE parking_parkingsession ADD CONSTRAINT {CONSTRAINT} "
        "FOREIGN KEY (smart_key_id, secured_parking_id) "
        "REFERENCES smart_keys_smartkey (id, secured_parking_id) "
        "DEFERRABLE INITIALLY DEFERRED NOT VALID"
    )
    schema_editor.execute(f"ALTER TABLE parking_parkingsession VALIDATE CONSTRAINT {CONSTRAINT}")


def drop_composite_foreign_key(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE parking_parkingsession DROP CONSTRAINT {CONSTRAINT}")


class Migration(migrations.Migration):
    """A session's smart key belongs to the session's parking: the key's name, activity and
    online flag in the API come from that one parking."""

    dependencies = [
        ("parking", "0003_operators_audit_and_back_office_indexes"),
        ("smart_keys", "0004_smart_key_id_with_parking"),
    ]

    operations = [
        migrations.RunPython(add_composite_foreign_key, drop_composite_foreign_key),
    ]
