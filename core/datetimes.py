from datetime import UTC, datetime


def iso_seconds(value: datetime | None) -> str | None:
    """The API's datetimes: ``2017-09-05T08:51:56+00:00`` (UTC, whole seconds, ``+00:00``)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()
