from django.db import migrations, models


class Migration(migrations.Migration):
    # Apart from 0005: PostgreSQL refuses to alter a table in the transaction that updated
    # its rows (their deferred foreign key checks are still pending).
    dependencies = [
        ("smart_keys", "0005_key_pair_next_and_switch"),
    ]

    operations = [
        migrations.AlterField(
            model_name="parkingkeypair",
            name="signs_from",
            field=models.DateTimeField(help_text="Commands are signed with this key from then."),
        ),
        migrations.AlterField(
            model_name="parkingkeypair",
            name="retired_at",
            field=models.DateTimeField(
                blank=True, help_text="Commands are signed with this key until then.", null=True
            ),
        ),
        migrations.AddConstraint(
            model_name="parkingkeypair",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "current")),
                fields=("secured_parking",),
                name="one_current_key_pair_per_parking",
            ),
        ),
        migrations.AddConstraint(
            model_name="parkingkeypair",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "next")),
                fields=("secured_parking",),
                name="one_next_key_pair_per_parking",
            ),
        ),
        migrations.AddConstraint(
            model_name="parkingkeypair",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("state", "current"),
                    models.Q(("retired_at__isnull", True), ("state", "next")),
                    models.Q(("retired_at__isnull", False), ("state", "retired")),
                    _connector="OR",
                ),
                name="key_pair_state_matches_retirement",
            ),
        ),
    ]
