"""Counters per time window for the API's rate limits, shared by every worker.

Every API request bumps one, so it has to cost a single round trip: with Redis
(``REDIS_URL``) that is one ``EVALSHA`` of a script that increments the key and, when it
has just been created, gives it its lifetime. Django's cache API needs three commands for
the same (``add``, then ``incr``'s EXISTS and INCRBY). Each thread keeps one connection of
its own (redis-py's ``single_connection_client``), like Django's database connections: the
pool's checkout and release cost more CPU than the round trip itself. Without Redis the
counters live in the Django cache (process memory in development).

A rate limit must not take the API down with it: when Redis does not answer, requests
are let through (and logged), and Redis is left alone for a few seconds, so a black-holed
server does not add its timeout to every request.
"""

import logging
import os
import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

KEY_PREFIX = "rate:"
REDIS_TIMEOUT_SECONDS = 0.5
PAUSE_AFTER_FAILURE_SECONDS = 5.0

# Atomic on the server: a counter never exists without its expiry.
INCREMENT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""

_paused_until = 0.0


class _ThreadConnection(threading.local):
    owner: tuple[int, str] | None = None
    client: redis.Redis | None = None
    increment: redis.commands.core.Script | None = None


_connection = _ThreadConnection()


def increment(key: str, ttl_seconds: int) -> int | None:
    """Adds one to ``key`` (created with a ``ttl_seconds`` lifetime) and returns the new
    count, or None when the shared store cannot be reached."""
    if not settings.REDIS_URL:
        return _increment_in_cache(key, ttl_seconds)
    global _paused_until
    if time.monotonic() < _paused_until:
        return None
    try:
        return _increment_script()(keys=[KEY_PREFIX + key], args=[ttl_seconds])
    except redis.RedisError:
        forget_connection()
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("rate limits: Redis did not answer; requests pass", exc_info=True)
        return None


def forget_connection() -> None:
    """Closes this thread's connection; the next increment opens a new one."""
    if _connection.client is not None:
        _connection.client.close()
    _connection.owner = _connection.client = _connection.increment = None


def _increment_in_cache(key: str, ttl_seconds: int) -> int:
    cache.add(key, 0, timeout=ttl_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=ttl_seconds)
        return 1


def _increment_script() -> redis.commands.core.Script:
    # A forked worker must not share its parent's socket.
    owner = (os.getpid(), settings.REDIS_URL)
    if _connection.owner != owner:
        forget_connection()
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            single_connection_client=True,
        )
        _connection.client, _connection.owner = client, owner
        _connection.increment = client.register_script(INCREMENT_SCRIPT)
    return _connection.increment


@receiver(setting_changed)
def _forget_pause(setting: str, **kwargs) -> None:
    global _paused_until
    if setting == "REDIS_URL":
        _paused_until = 0.0
