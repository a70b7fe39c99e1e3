import base64
import binascii
import json
from dataclasses import asdict
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from smart_keys.access_commands import (
    AccessCommand,
    AccessCommandRefused,
    BarrierKey,
    decode_access_command,
    verify_access_command,
)
from smart_keys.selectors import trusted_barrier_keys


class Command(BaseCommand):
    help = (
        "Verify an access command the way a barrier does (docs/access-command.md): print its "
        "fields and exit 0 if the barrier would open, or print why not and exit 1. Without "
        "--public-key it uses the keys this backend trusts now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("command", help="The access command, as the app sends it.")
        parser.add_argument("--mac", required=True, help="The barrier's MAC address.")
        parser.add_argument(
            "--public-key",
            action="append",
            dest="public_keys",
            metavar="KEY",
            help="A trusted Ed25519 public key, 64 hex digits or base64url (repeatable).",
        )
        parser.add_argument("--parking", type=int, help="Use this parking's trusted keys.")
        parser.add_argument("--direction", choices=["entrance", "exit"])
        parser.add_argument("--last-counter", type=int, help="The barrier's last counter.")
        parser.add_argument("--now", help="ISO 8601 time to verify at (default: now).")
        parser.add_argument("--leeway", type=int, default=0, help="Clock leeway, seconds.")

    def handle(self, *args, **options) -> None:
        now = _parse_now(options["now"])
        keys = _keys(options["public_keys"], options["parking"], now)
        try:
            fields = verify_access_command(
                options["command"],
                keys,
                options["mac"],
                now,
                options["last_counter"],
                direction=options["direction"],
                leeway_seconds=options["leeway"],
            )
        except AccessCommandRefused as refusal:
            self.stdout.write(json.dumps(_unverified(options["command"]), indent=2))
            raise CommandError(f"REFUSED ({refusal.reason}): {refusal.message}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(json.dumps(_describe(fields), indent=2))
        self.stdout.write(self.style.SUCCESS("VALID: the barrier would open."))


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return timezone.now()
    moment = parse_datetime(text)
    if moment is None or timezone.is_naive(moment):
        raise CommandError("--now needs an ISO 8601 time with a UTC offset.")
    return moment


def _keys(public_keys: list[str] | None, parking_id: int | None, now: datetime) -> list:
    if public_keys:
        return [BarrierKey(_key_bytes(text)) for text in public_keys]
    return trusted_barrier_keys(now=now, secured_parking_id=parking_id)


def _key_bytes(text: str) -> bytes:
    try:
        raw = (
            bytes.fromhex(text)
            if len(text) == 64
            else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise CommandError(f"Not a 32-byte Ed25519 public key: {text!r}")
    return raw


def _describe(fields: AccessCommand) -> dict:
    described = asdict(fields)
    described["key_id"] = fields.key_id.hex()
    described["access_point_tags"] = [tag.hex() for tag in fields.access_point_tags]
    described["not_after"] = fields.not_after
    return described


def _unverified(command: str) -> dict:
    try:
        fields, _payload, _signature = decode_access_command(command)
    except AccessCommandRefused:
        return {"unverified": None}
    return {"unverified": _describe(fields)}
