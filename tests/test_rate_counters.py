"""Rate-limit counters in the Django cache (Redis in production), and no outage of the API
when Redis is down (core.rate_counters)."""

import logging

import pytest
import redis

from core.throttling import DriverRateThrottle
from tests.api import CURRENT_URL, error_codes

TEST_REDIS_URL = "redis://127.0.0.1:6379/14"

pytestmark = pytest.mark.django_db


def _redis_cache(location: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture
def test_redis(settings):
    settings.CACHES = _redis_cache(TEST_REDIS_URL)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.redis
def test_a_driver_is_throttled_by_a_counter_in_redis(test_redis, driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "3/min", raising=False)

    statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(4)]

    assert statuses == [404, 404, 404, 429]
    (key,) = test_redis.keys(f"*throttle_driver_{driver_client.driver.pk}:*")
    assert int(test_redis.get(key)) == 4
    assert 0 < test_redis.ttl(key) <= 61


@pytest.mark.redis
def test_the_count_is_shared_by_every_worker(test_redis, driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "2/min", raising=False)
    assert driver_client.get(CURRENT_URL).status_code == 404
    # Another worker: the same window's counter, bumped by someone else in the meantime.
    (key,) = test_redis.keys(f"*throttle_driver_{driver_client.driver.pk}:*")
    test_redis.incr(key)

    assert driver_client.get(CURRENT_URL).status_code == 429


def test_requests_pass_when_redis_is_down(settings, driver_client, monkeypatch, caplog):
    settings.CACHES = _redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    monkeypatch.setattr(DriverRateThrottle, "rate", "1/min", raising=False)
    attempts = []
    original = redis.connection.Connection.connect
    monkeypatch.setattr(
        redis.connection.Connection, "connect", lambda self: attempts.append(1) or original(self)
    )

    with caplog.at_level(logging.WARNING, logger="core.rate_counters"):
        statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(3)]

    assert statuses == [404, 404, 404]  # not throttled, and not a 500
    assert "the cache did not answer" in caplog.text
    assert len(attempts) == 1  # then Redis is left alone for a few seconds


def test_without_redis_the_counters_live_in_process_memory(driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "1/min", raising=False)
    monkeypatch.setattr(redis.connection.Connection, "connect", lambda self: pytest.fail("Redis"))

    statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(2)]

    assert statuses == [404, 429]
    assert error_codes(driver_client.get(CURRENT_URL)) == ["throttled"]
