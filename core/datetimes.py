from datetime import UTC, datetime
from typing import overload


@overload
def iso_seconds(value: datetime) -> str: ...
@overload
def iso_seconds(value: None) -> None: ...
@overload
def iso_seconds(value: datetime | None) -> str | None: ...


def iso_seconds(value: datetime | None) -> str | None:
    """The API's datetimes: ``2017-09-05T08:51:56+00:00`` (UTC, whole seconds, ``+00:00``)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()
