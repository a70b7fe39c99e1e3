"""Counters per time window for the API's rate limits, shared by every worker.

Every API request bumps one, so it has to cost a single round trip: with Redis
(``REDIS_URL``) that is one pipeline of ``SET key 0 EX ttl NX`` and ``INCR key``. Django's
cache API needs three commands for the same (``add``, then ``incr``'s EXISTS and INCRBY),
which on this hardware cost more than the rest of ``GET current``. Without Redis the
counters live in the Django cache (process memory in development).

A rate limit must not take the API down with it: when Redis does not answer, requests
are let through (and logged), and Redis is left alone for a few seconds, so a black-holed
server does not add its timeout to every request.
"""

import logging
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

_client: redis.Redis | None = None
_paused_until = 0.0


def increment(key: str, ttl_seconds: int) -> int | None:
    """Adds one to ``key`` (created with a ``ttl_seconds`` lifetime) and returns the new
    count, or None when the shared store cannot be reached."""
    if not settings.REDIS_URL:
        return _increment_in_cache(key, ttl_seconds)
    global _paused_until
    if time.monotonic() < _paused_until:
        return None
    try:
        pipeline = _redis().pipeline(transaction=False)
        pipeline.set(KEY_PREFIX + key, 0, ex=ttl_seconds, nx=True)
        pipeline.incr(KEY_PREFIX + key)
        _, count = pipeline.execute()
    except redis.RedisError:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("rate limits: Redis did not answer; requests pass", exc_info=True)
        return None
    return count


def _increment_in_cache(key: str, ttl_seconds: int) -> int:
    cache.add(key, 0, timeout=ttl_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=ttl_seconds)
        return 1


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
    return _client


@receiver(setting_changed)
def _forget_client(setting: str, **kwargs) -> None:
    global _client, _paused_until
    if setting == "REDIS_URL":
        _client, _paused_until = None, 0.0
