import secrets
from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Greatest

from accounts.models import User
from parking.models import SecuredParking
from smart_keys.models import AccessPoint, Direction, SmartKey, SmartKeyType


def new_access_command() -> str:
    return secrets.token_urlsafe(32)


def issue_session_key(*, driver: User, secured_parking: SecuredParking, now: datetime) -> SmartKey:
    """A fresh ``session_access`` key that opens the parking's entrance barriers."""
    smart_key = SmartKey.objects.create(
        driver=driver,
        secured_parking=secured_parking,
        type=SmartKeyType.SESSION_ACCESS,
        description=f"Session access to {secured_parking.name}",
        start_time=now,
        end_time=now + settings.SMART_KEY_VALIDITY,
        access_command=new_access_command(),
    )
    _serve_access_points(smart_key, Direction.ENTRANCE)
    return smart_key


def refresh_access_command(*, smart_key_id: int, now: datetime) -> None:
    """A new command, valid from now: each try gets one, so an old capture expires soon."""
    SmartKey.objects.filter(pk=smart_key_id).update(
        access_command=new_access_command(),
        start_time=now,
        end_time=now + settings.SMART_KEY_VALIDITY,
    )


def switch_key_to_exit(*, smart_key_id: int, now: datetime) -> None:
    """The driver heads out: the key now opens the exit barriers instead of the entrance."""
    _serve_access_points(SmartKey.objects.get(pk=smart_key_id), Direction.EXIT)
    refresh_access_command(smart_key_id=smart_key_id, now=now)


def expire_key(*, smart_key_id: int, now: datetime) -> None:
    """The session is over: the key stops being valid now, if it still was."""
    SmartKey.objects.filter(pk=smart_key_id, end_time__gt=now).update(
        end_time=Greatest(F("start_time"), now)
    )


def _serve_access_points(smart_key: SmartKey, direction: Direction) -> None:
    smart_key.access_points.set(
        AccessPoint.objects.filter(
            secured_parking_id=smart_key.secured_parking_id, direction=direction
        )
    )
