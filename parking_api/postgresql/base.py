"""Django's PostgreSQL backend with a connection health check that needs no round trip, and
timestamps read by psycopg's compiled loader.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first query of every request
that reuses a connection: on ``GET current`` a third round trip beside its two reads. An
idle connection receives nothing until it sends a query, so a socket with nothing to read
is a connection the server still holds open; anything waiting on it (the server's notice
that it is closing the connection, or EOF) falls back to Django's ``SELECT 1``.
"""

import datetime
import select
from functools import cache
from typing import Any

from django.db.backends.postgresql import base
from psycopg import abc, adapt, adapters
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid
# psycopg's own loader (its C implementation when psycopg[binary] is installed): it returns
# datetimes in the connection's time zone, which Django sets to UTC when USE_TZ is on.
_COMPILED_TIMESTAMPTZ_LOADER = (
    adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) or TimestamptzLoader
)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        if _socket_is_quiet(self.connection.fileno()):
            return True
        return super().is_usable()

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if self.timezone is datetime.UTC:
            params["context"] = _with_compiled_timestamptz_loader(params["context"])
        return params


class UtcTimestamptzLoader(adapt.Loader):
    """Django's own loader parses each timestamptz in Python and then replaces its zone; on
    a UTC connection psycopg's compiled loader already gives the same aware datetime."""

    # Read by Django's create_cursor, which re-registers its loader on any other value.
    timezone = datetime.UTC

    def __init__(self, oid: int, context: abc.AdaptContext | None = None):
        super().__init__(oid, context)
        self.load = _COMPILED_TIMESTAMPTZ_LOADER(oid, context).load  # type: ignore[method-assign]

    def load(self, data: abc.Buffer) -> datetime.datetime:
        raise AssertionError("replaced by the compiled loader's load in __init__")


@cache
def _with_compiled_timestamptz_loader(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    # Django caches one template per time zone and shares it: change a copy of it.
    context = adapt.AdaptersMap(template)
    context.register_loader("timestamptz", UtcTimestamptzLoader)
    return context


def _socket_is_quiet(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
