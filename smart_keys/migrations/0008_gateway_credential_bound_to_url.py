"""Gateway credentials are now encrypted together with the URL they may be sent to."""

import json

from django.db import migrations

from smart_keys.secrets_at_rest import decrypt_secret, encrypt_secret, seal_credential


def bind_to_url(apps, schema_editor):
    BarrierGateway = apps.get_model("smart_keys", "BarrierGateway")
    for gateway in BarrierGateway.objects.exclude(encrypted_credential=""):
        credential = decrypt_secret(gateway.encrypted_credential).decode()
        gateway.encrypted_credential = seal_credential(credential, url=gateway.url)
        gateway.save(update_fields=["encrypted_credential"])


def unbind(apps, schema_editor):
    BarrierGateway = apps.get_model("smart_keys", "BarrierGateway")
    for gateway in BarrierGateway.objects.exclude(encrypted_credential=""):
        sealed = json.loads(decrypt_secret(gateway.encrypted_credential))
        gateway.encrypted_credential = encrypt_secret(sealed["credential"].encode())
        gateway.save(update_fields=["encrypted_credential"])


class Migration(migrations.Migration):
    dependencies = [
        ("smart_keys", "0007_barrier_gateway_url_rules"),
    ]

    operations = [migrations.RunPython(bind_to_url, unbind)]
