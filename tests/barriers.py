"""Reference barriers (smart_keys.reference_barrier) installed at a parking as an operator
installs real ones: provisioned with the parking's trusted keys, their own public key
registered on their access point. And the app's side: relaying their records through
``POST passages`` and handing the acknowledgements back."""

from datetime import datetime, timedelta

from django.utils import timezone

from parking.selectors import barrier_provisioning
from smart_keys.passages import register_barrier_key
from smart_keys.reference_barrier import ReferenceBarrier
from smart_keys.services import ensure_key_pairs
from smart_keys.signed_messages import BarrierKey
from tests.api import API, json_body

PASSAGES_URL = f"{API}/passages"


def provisioned_keys(secured_parking_id: int, now: datetime) -> list[BarrierKey]:
    """The parking's public keys, as ``manage.py export_barrier_keys`` prints them."""
    ensure_key_pairs(parking_ids=[secured_parking_id], now=now)
    (parking,) = barrier_provisioning(now=now, parking_ids=[secured_parking_id])
    keys = [parking[name] for name in ("current_key", "next_key", "previous_key")]
    return [
        BarrierKey(
            bytes.fromhex(key["public_key"]),
            datetime.fromisoformat(key["accepted_until"]) if key["accepted_until"] else None,
        )
        for key in keys
        if key
    ]


def install_barrier(
    access_point, *, clock_offset: timedelta = timedelta(0), register: bool = True
) -> ReferenceBarrier:
    now = timezone.now()
    barrier = ReferenceBarrier(
        mac_address=access_point.mac_address,
        direction=access_point.direction,
        parking_keys=provisioned_keys(access_point.secured_parking_id, now),
        clock_offset=clock_offset,
    )
    if register:
        register_barrier_key(
            access_point=access_point, public_key=barrier.public_key.hex(), now=now
        )
    return barrier


def upload(client, records: list[str]) -> dict:
    """``POST passages`` that must answer 200; its body."""
    return json_body(client.post(PASSAGES_URL, {"records": records}, format="json"), 200)


def relay(client, *barriers: ReferenceBarrier, now: datetime | None = None) -> dict:
    """What the app does at a connection: upload what each barrier hands over, then hand
    each barrier the acknowledgements of the answer."""
    records = [record for barrier in barriers for record in barrier.hand_over()]
    body = upload(client, records)
    for barrier in barriers:
        for ack in body["acknowledgements"]:
            barrier.acknowledge(ack["acknowledgement"], now or timezone.now())
    return body


def statuses(body: dict) -> list[tuple[str, str | None]]:
    return [(result["status"], result["reason"]) for result in body["results"]]


class Clock:
    """The backend's clock (``django.utils.timezone.now``) moved on by the test: stays of
    hours in a test that lasts seconds. Barriers are given the same ``now``."""

    def __init__(self, monkeypatch) -> None:
        self.real_now = timezone.now
        self.offset = timedelta(0)
        monkeypatch.setattr(timezone, "now", self.now)

    def now(self) -> datetime:
        return self.real_now() + self.offset

    def advance(self, **delta: float) -> datetime:
        self.offset += timedelta(**delta)
        return self.now()


def long_lived(client):
    """A driver client whose token outlives the clock's travels."""
    client.access_token.expires = timezone.now() + timedelta(days=30)
    client.access_token.save(update_fields=["expires"])
    return client
