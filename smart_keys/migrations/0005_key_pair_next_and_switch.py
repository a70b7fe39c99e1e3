from django.db import migrations, models


def states_and_switch_times(apps, schema_editor):
    ParkingKeyPair = apps.get_model("smart_keys", "ParkingKeyPair")
    ParkingKeyPair.objects.filter(retired_at__isnull=False).update(state="retired")
    ParkingKeyPair.objects.update(signs_from=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("smart_keys", "0004_smart_key_id_with_parking"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="parkingkeypair",
            name="one_current_key_pair_per_parking",
        ),
        migrations.AddField(
            model_name="parkingkeypair",
            name="state",
            field=models.CharField(
                choices=[("next", "Next"), ("current", "Current"), ("retired", "Retired")],
                default="current",
                max_length=8,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="parkingkeypair",
            name="signs_from",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(states_and_switch_times, migrations.RunPython.noop),
    ]
