import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import UsedAuthorizationCode
from parking.models import IdempotencyRecord, ParkingSession, State
from smart_keys.models import SmartKey
from tests.factories import DriverFactory, ParkingSessionFactory

pytestmark = pytest.mark.django_db


def test_cleanup_cancels_only_stale_entering_sessions_and_old_idempotency_records(settings, capsys):
    now = timezone.now()
    stale = ParkingSessionFactory(
        state=State.ENTERING,
        start_time=now - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1),
    )
    fresh = ParkingSessionFactory(state=State.ENTERING, start_time=now - timedelta(minutes=1))
    parked = ParkingSessionFactory(state=State.ACTIVE, start_time=now - timedelta(days=2))
    driver = DriverFactory()
    for key, age in (("old", timedelta(hours=25)), ("new", timedelta(hours=23))):
        IdempotencyRecord.objects.create(
            driver=driver, key=key, request_fingerprint="x", response_status=201,
            response_body={}, created_at=now - age,
        )  # fmt: skip

    call_command("cleanup_parking")

    states = dict(ParkingSession.objects.values_list("pk", "state"))
    assert states == {stale.pk: State.CANCELLED, fresh.pk: State.ENTERING, parked.pk: State.ACTIVE}
    stale.refresh_from_db()
    assert stale.amount == 0 and stale.end_time == stale.start_time
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert "Cancelled 1 stale entering session(s); purged 1" in capsys.readouterr().out
    assert SmartKey.objects.count() == 3


def test_cleanup_forgets_used_authorization_codes_past_a_refresh_tokens_lifetime(settings, capsys):
    now = timezone.now()
    lifetime = timedelta(seconds=settings.OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"])
    for checksum, age in (("old", lifetime + timedelta(minutes=1)), ("new", lifetime / 2)):
        UsedAuthorizationCode.objects.create(
            code_checksum=checksum, token_family=uuid.uuid4(), used_at=now - age
        )

    call_command("cleanup_parking")

    assert list(UsedAuthorizationCode.objects.values_list("code_checksum", flat=True)) == ["new"]
    assert "and 1 used authorization code(s)." in capsys.readouterr().out
