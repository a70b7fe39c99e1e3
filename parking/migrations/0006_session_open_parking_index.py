from django.db import migrations, models

from core.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction; the sessions stay writable.
    atomic = False

    dependencies = [
        ('parking', '0005_idempotency_record_request_id'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='parkingsession',
            index=models.Index(condition=models.Q(('state__in', ('entering', 'active', 'exiting'))), fields=['secured_parking', 'state', 'start_time'], name='session_open_parking'),
        ),
    ]
