import csv
import io
import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import DomainError
from smart_keys.mac_addresses import normalize_mac_address
from smart_keys.models import AccessPoint
from smart_keys.passages import register_barrier_key


class RowRefused(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Register barriers' own public keys from a provisioning file (docs/passage-record.md): "
        "CSV with the columns mac_address,public_key, or JSON, a list of objects with those "
        "members; '-' reads standard input. A barrier whose key differs gets the new one "
        "(the old one still verifies the records it signed before); one already holding it "
        "is left as it is. Prints one line per barrier and exits 1 if any was refused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The CSV or JSON file, or '-'.")
        parser.add_argument(
            "--compromised",
            action="store_true",
            help="The replaced keys may be compromised: refuse their records from now on.",
        )

    def handle(self, *args, file: str, compromised: bool, **options) -> None:
        rows = _rows(sys.stdin.read() if file == "-" else _read(file))
        now = timezone.now()
        refused = 0
        for number, row in enumerate(rows, start=1):
            try:
                line = self._register(row, now=now, compromised=compromised)
            except (DomainError, ValidationError, RowRefused) as error:
                refused += 1
                self.stderr.write(f"row {number}: refused: {_reason(error)}")
                continue
            self.stdout.write(f"row {number}: {line}")
        if refused:
            raise CommandError(f"{refused} of {len(rows)} rows refused.")

    def _register(self, row: dict, *, now, compromised: bool) -> str:
        missing = [name for name in ("mac_address", "public_key") if not row.get(name)]
        if missing:
            raise RowRefused(f"no {' and no '.join(missing)}")
        mac = normalize_mac_address(str(row["mac_address"]))
        access_point = AccessPoint.objects.filter(mac_address=mac).first()
        if access_point is None:
            raise RowRefused(f"no access point with MAC {mac}")
        before = access_point.barrier_keys.current().first()
        key = register_barrier_key(
            access_point=access_point,
            public_key=str(row["public_key"]),
            now=now,
            compromised=compromised,
        )
        if before is not None and before.pk == key.pk:
            return f"{mac} already holds key {key.key_id}"
        return f"{mac} key {key.key_id}" + (f" (replaces {before.key_id})" if before else "")


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CommandError(f"Cannot read {file}: {error.strerror}") from error


def _rows(text: str) -> list[dict]:
    if text.lstrip().startswith(("[", "{")):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"Not valid JSON: {error}") from error
        if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
            raise CommandError("The JSON must be a list of objects.")
        return document
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"mac_address", "public_key"} <= set(reader.fieldnames):
        raise CommandError("The CSV needs a header with mac_address and public_key.")
    return list(reader)


def _reason(error: Exception) -> str:
    if isinstance(error, DomainError):
        return str(error.message)
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)
