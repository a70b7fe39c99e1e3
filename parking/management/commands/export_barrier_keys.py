import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from parking.models import SecuredParking
from parking.selectors import barrier_provisioning
from smart_keys.services import ensure_key_pairs


class Command(BaseCommand):
    help = (
        "Print, as JSON, each parking's current, next (published by a routine rotation, "
        "signing from its signs_from) and previous (still trusted) Ed25519 public keys and "
        "its access points' tags, to provision barriers with. Parkings without a "
        "key pair get one first, so barriers can be provisioned before the first command. "
        "Public keys only: private keys never leave the backend."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--parking",
            type=int,
            action="append",
            dest="parking_ids",
            metavar="ID",
            help="Only this secured parking (repeatable).",
        )

    def handle(self, *args, parking_ids: list[int] | None, **options) -> None:
        now = timezone.now()
        parkings = SecuredParking.objects.all()
        if parking_ids:
            parkings = parkings.filter(pk__in=parking_ids)
        ids = list(parkings.values_list("pk", flat=True))
        made = ensure_key_pairs(parking_ids=ids, now=now)
        if made:
            self.stderr.write(f"Made {made} new key pair(s) for parkings that had none.")
        provisioning = barrier_provisioning(now=now, parking_ids=parking_ids)
        document = {
            "generated_at": now.replace(microsecond=0).isoformat(),
            "parkings": provisioning,
        }
        self.stdout.write(json.dumps(document, indent=2))
