"""Counters per time window for the API's rate limits, in the Django cache: Redis when
``REDIS_URL`` is set (shared by every worker), process memory otherwise.

A rate limit must not take the API down with it: when the cache does not answer, requests
are let through (and logged), and the cache is left alone for a few seconds, so a
black-holed server does not add its timeout to every request.
"""

import logging
import time

import redis
from django.core.cache import cache

logger = logging.getLogger(__name__)

PAUSE_AFTER_FAILURE_SECONDS = 5.0

_paused_until = 0.0


def increment(key: str, ttl_seconds: int) -> int | None:
    """Adds one to ``key`` (created with a ``ttl_seconds`` lifetime) and returns the new
    count, or None when the cache cannot be reached."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return None
    try:
        return _increment(key, ttl_seconds)
    except redis.RedisError:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("rate limits: the cache did not answer; requests pass", exc_info=True)
        return None


def resume() -> None:
    """Try the cache again on the next increment, even within the pause."""
    global _paused_until
    _paused_until = 0.0


def _increment(key: str, ttl_seconds: int) -> int:
    # add() creates the counter with its lifetime in one command, so it never lives forever.
    cache.add(key, 0, timeout=ttl_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=ttl_seconds)
        return 1
