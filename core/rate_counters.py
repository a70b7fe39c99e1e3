"""Counters per time window for the API's rate limits, shared by every worker: in Redis
when ``REDIS_URL`` is set, in the Django cache (process memory) otherwise.

A rate limit must not take the API down with it: when Redis does not answer, requests
are let through (and logged), and Redis is left alone for half a second, so a
black-holed server does not add its timeout to every request, and throttling works again
within a second of Redis answering.
"""

import logging
import os
import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from redis.commands.core import Script

logger = logging.getLogger(__name__)

KEY_PREFIX = "rate:"
REDIS_TIMEOUT_SECONDS = 0.5
PAUSE_AFTER_FAILURE_SECONDS = 0.5

# Atomic on the server: a counter never exists without its expiry.
INCREMENT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""

_paused_until = 0.0
# Bumped on every failure: each thread then drops its connection, which died with the
# server, instead of finding out on its own first request after the pause.
_failures = 0


class _ThreadConnection(threading.local):
    owner: tuple[int, str, int] | None = None
    client: redis.Redis | None = None
    increment: Script | None = None


_connection = _ThreadConnection()


def increment(key: str, ttl_seconds: int) -> int | None:
    """Adds one to ``key`` (created with a ``ttl_seconds`` lifetime) and returns the new
    count, or None when Redis cannot be reached."""
    if not settings.REDIS_URL:
        return _increment_in_cache(key, ttl_seconds)
    global _paused_until, _failures
    if time.monotonic() < _paused_until:
        return None
    try:
        return int(_increment_script()(keys=[KEY_PREFIX + key], args=[ttl_seconds]))
    except redis.RedisError:
        forget_connection()
        _failures += 1
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("rate limits: Redis did not answer; requests pass", exc_info=True)
        return None


def resume() -> None:
    """Try Redis again on the next increment, even within the pause."""
    global _paused_until
    _paused_until = 0.0


def forget_connection() -> None:
    """Closes this thread's connection; the next increment opens a new one."""
    if _connection.client is not None:
        _connection.client.close()
    _connection.owner = _connection.client = _connection.increment = None


def _increment_in_cache(key: str, ttl_seconds: int) -> int:
    # add() creates the counter with its lifetime, so it never lives forever.
    cache.add(key, 0, timeout=ttl_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=ttl_seconds)
        return 1


def _increment_script() -> Script:
    # One EVALSHA on a connection of this thread's own is a single round trip with no pool
    # checkout; the cache API needs three commands and the pool for the same count, and
    # every API request counts (bench/results.md, variant throttle_script).
    # A forked worker must not share the socket; after a failure nobody keeps theirs.
    owner = (os.getpid(), settings.REDIS_URL, _failures)
    if _connection.owner != owner or _connection.increment is None:
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
