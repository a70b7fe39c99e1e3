"""Django's PostgreSQL backend with a health check that needs no round trip.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first query of every request
that reuses a connection: one more round trip on every API request, as long as the rest of
``GET current``'s work. An idle connection receives nothing until it sends a query, so when
its socket is quiet the connection is alive as far as the server is concerned. Anything
waiting on it (in practice the server's notice that it is terminating the connection, or
EOF) sends us back to Django's ``SELECT 1``.
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
