import json
from datetime import datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import DomainError
from smart_keys.access_commands import AccessCommandRefused
from smart_keys.mac_addresses import normalize_mac_address
from smart_keys.models import AccessPoint
from smart_keys.passages import register_barrier_key
from smart_keys.reference_barrier import ReferenceBarrier
from smart_keys.selectors import trusted_barrier_keys
from smart_keys.services import ensure_key_pairs
from smart_keys.signed_messages import BarrierKey


class Command(BaseCommand):
    help = (
        "A software barrier (smart_keys.reference_barrier) that does what docs/access-command.md "
        "and docs/passage-record.md ask of firmware, its state kept in a JSON file: test an app "
        "against it. 'init' makes one (its own key pair, the parking's trusted keys); "
        "'present' is the app writing an access command (prints the passage record, or why "
        "not and exits 1); 'records' is what a connecting phone is handed (JSON); "
        "'acknowledge' and 'time' take what the backend's answers carry; 'show' prints the "
        "barrier."
    )

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        init = actions.add_parser("init", help="Install a new barrier.")
        init.add_argument("state", help="The JSON file to keep the barrier in.")
        init.add_argument("--mac", required=True, help="The access point's MAC address.")
        init.add_argument("--direction", choices=["entrance", "exit"])
        init.add_argument(
            "--public-key",
            action="append",
            dest="public_keys",
            metavar="HEX",
            help="A parking key to trust (repeatable); by default the keys this backend's "
            "parking of the access point trusts now.",
        )
        init.add_argument(
            "--register",
            action="store_true",
            help="Register the barrier's public key on its access point here.",
        )
        init.add_argument(
            "--clock-offset", type=float, default=0, help="Seconds its clock runs ahead."
        )
        for name, help_text in [
            ("present", "Write an access command to the barrier."),
            ("acknowledge", "Hand it an acknowledgement."),
            ("time", "Hand it a time statement."),
        ]:
            sub = actions.add_parser(name, help=help_text)
            sub.add_argument("state")
            sub.add_argument("message")
            sub.add_argument("--now", help="ISO 8601 true time (default: now).")
        for name, help_text in [
            ("records", "Print the records a connecting phone is handed."),
            ("show", "Print the barrier."),
        ]:
            actions.add_parser(name, help=help_text).add_argument("state")

    def handle(self, *args, action: str, state: str, **options) -> None:
        path = Path(state)
        if action == "init":
            barrier = self._init(options)
        else:
            barrier = _load(path)
            now = _moment(options.get("now"))
            getattr(self, f"_{action}")(barrier, options.get("message"), now)
        path.write_text(barrier.to_json())

    def _init(self, options) -> ReferenceBarrier:
        mac = normalize_mac_address(options["mac"])
        access_point = AccessPoint.objects.filter(mac_address=mac).first()
        direction: str | None = options["direction"] or (
            access_point.direction if access_point else None
        )
        if direction is None:
            raise CommandError("No access point has this MAC here: give --direction.")
        if options["public_keys"]:
            keys = [BarrierKey(bytes.fromhex(key)) for key in options["public_keys"]]
        elif access_point is not None:
            now = timezone.now()
            ensure_key_pairs(parking_ids=[access_point.secured_parking_id], now=now)
            keys = trusted_barrier_keys(now=now, secured_parking_id=access_point.secured_parking_id)
        else:
            raise CommandError("No access point has this MAC here: give --public-key.")
        barrier = ReferenceBarrier(
            mac_address=mac,
            direction=direction,
            parking_keys=keys,
            clock_offset=timedelta(seconds=options["clock_offset"]),
        )
        if options["register"]:
            if access_point is None:
                raise CommandError("No access point has this MAC here to register the key on.")
            try:
                register_barrier_key(
                    access_point=access_point,
                    public_key=barrier.public_key.hex(),
                    now=timezone.now(),
                )
            except DomainError as refusal:
                raise CommandError(str(refusal.message)) from refusal
        self._show(barrier, None, timezone.now())
        return barrier

    def _present(self, barrier: ReferenceBarrier, command: str, now: datetime) -> None:
        try:
            record = barrier.present(command, now)
        except AccessCommandRefused as refusal:
            raise CommandError(f"refused: {refusal.reason} ({refusal.message})") from refusal
        self.stdout.write(f"opened; record {barrier.sequence}: {record}")

    def _records(self, barrier: ReferenceBarrier, _message, _now) -> None:
        self.stdout.write(json.dumps({"records": barrier.hand_over()}))

    def _acknowledge(self, barrier: ReferenceBarrier, acknowledgement: str, now: datetime) -> None:
        forgotten = barrier.acknowledge(acknowledgement, now)
        self.stdout.write(f"forgot {forgotten} records; {len(barrier.records)} kept")

    def _time(self, barrier: ReferenceBarrier, statement: str, now: datetime) -> None:
        applied = barrier.apply_time_statement(statement, now)
        offset = barrier.clock_offset.total_seconds()
        self.stdout.write(f"{'applied' if applied else 'ignored'}; clock offset {offset:+.0f} s")

    def _show(self, barrier: ReferenceBarrier, _message, now: datetime) -> None:
        summary = {
            "mac_address": barrier.mac_address,
            "direction": barrier.direction,
            "public_key": barrier.public_key.hex(),
            "key_id": barrier.key_id.hex(),
            "tag": barrier.tag.hex(),
            "sequence": barrier.sequence,
            "unacknowledged_records": len(barrier.records),
            "clock_offset_seconds": barrier.clock_offset.total_seconds(),
            "trusted_parking_keys": [key.key_id.hex() for key in barrier.parking_keys],
        }
        self.stdout.write(json.dumps(summary, indent=2))


def _load(path: Path) -> ReferenceBarrier:
    try:
        return ReferenceBarrier.from_json(path.read_text())
    except OSError as error:
        raise CommandError(f"Cannot read {path}: run 'init' first.") from error


def _moment(text: str | None) -> datetime:
    if not text:
        return timezone.now()
    moment = parse_datetime(text)
    if moment is None or moment.tzinfo is None:
        raise CommandError("--now takes an ISO 8601 time with its offset.")
    return moment
