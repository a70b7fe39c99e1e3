import django.db.models.deletion
from django.db import migrations, models

# As parking.models.PARKED_STATES when this migration was written.
PARKED_STATES = ("active", "exiting")


def count_parked_cars(apps, schema_editor):
    """Every parking's counter starts at its sessions parked now. Sessions that change while
    older code still serves are not counted by it: ``recount_occupancy`` repairs that."""
    SecuredParking = apps.get_model("parking", "SecuredParking")
    ParkingSession = apps.get_model("parking", "ParkingSession")
    ParkingOccupancy = apps.get_model("parking", "ParkingOccupancy")
    parked = dict(
        ParkingSession.objects.filter(state__in=PARKED_STATES)
        .order_by()
        .values("secured_parking")
        .annotate(count=models.Count("*"))
        .values_list("secured_parking", "count")
    )
    ParkingOccupancy.objects.bulk_create(
        ParkingOccupancy(secured_parking_id=pk, parked=parked.get(pk, 0))
        for pk in SecuredParking.objects.values_list("pk", flat=True).iterator()
    )


def forget_counts(apps, schema_editor):
    apps.get_model("parking", "ParkingOccupancy").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('parking', '0012_refund_permission_and_audit'),
    ]

    operations = [
        migrations.CreateModel(
            name='ParkingOccupancy',
            fields=[
                ('secured_parking', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='occupancy', serialize=False, to='parking.securedparking', verbose_name='secured parking')),
                ('parked', models.PositiveIntegerField(default=0, verbose_name='parked cars')),
            ],
            options={
                'verbose_name': 'parking occupancy',
                'verbose_name_plural': 'parking occupancies',
                'constraints': [models.CheckConstraint(condition=models.Q(('parked__gte', 0)), name='occupancy_not_negative')],
            },
        ),
        migrations.RunPython(count_parked_cars, forget_counts),
    ]
