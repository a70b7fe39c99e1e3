"""Django's PostgreSQL backend with a connection health check that needs no round trip.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first query of every request
that reuses a connection: on ``GET current`` a third round trip beside its two reads. An
idle connection receives nothing until it sends a query, so a socket with nothing to read
is a connection the server still holds open; anything waiting on it (the server's notice
that it is closing the connection, or EOF) falls back to Django's ``SELECT 1``.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        if _socket_is_quiet(self.connection.fileno()):
            return True
        return super().is_usable()


def _socket_is_quiet(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
