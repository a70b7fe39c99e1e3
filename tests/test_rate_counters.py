"""Rate-limit counters in Redis: one round trip per request, and no outage of the API when
Redis is down (core.rate_counters)."""

import logging
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from core import rate_counters
from core.throttling import DriverRateThrottle
from tests.api import CURRENT_URL, error_codes
from tests.tools import free_port

TEST_REDIS_URL = "redis://127.0.0.1:6379/14"

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_redis(settings):
    settings.REDIS_URL = TEST_REDIS_URL
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def round_trips(monkeypatch):
    sent = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(command)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    return sent


@pytest.mark.redis
def test_a_driver_is_throttled_by_a_counter_in_redis(test_redis, driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "3/min", raising=False)

    statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(4)]

    assert statuses == [404, 404, 404, 429]
    (key,) = test_redis.keys(
        f"{rate_counters.KEY_PREFIX}throttle_driver_{driver_client.driver.pk}:*"
    )
    assert int(test_redis.get(key)) == 4
    assert 0 < test_redis.ttl(key) <= 61


@pytest.mark.redis
def test_the_count_is_shared_by_every_worker(test_redis, driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "2/min", raising=False)
    assert driver_client.get(CURRENT_URL).status_code == 404
    rate_counters.forget_connection()  # another worker: a connection of its own, same Redis
    assert driver_client.get(CURRENT_URL).status_code == 404
    rate_counters.forget_connection()
    assert driver_client.get(CURRENT_URL).status_code == 429


@pytest.mark.redis
def test_one_round_trip_per_request(test_redis, driver_client, round_trips):
    driver_client.get(CURRENT_URL)  # connects
    round_trips.clear()

    assert driver_client.get(CURRENT_URL).status_code == 404

    assert len(round_trips) == 1


@pytest.mark.redis
def test_counting_survives_redis_forgetting_the_script(test_redis, driver_client, monkeypatch):
    monkeypatch.setattr(DriverRateThrottle, "rate", "2/min", raising=False)
    assert driver_client.get(CURRENT_URL).status_code == 404
    test_redis.script_flush()  # as after a Redis restart or failover

    statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(2)]

    assert statuses == [404, 429]


@pytest.mark.redis
def test_each_thread_counts_on_a_connection_of_its_own(test_redis):
    connections = {}

    def count_in_a_thread(name):
        rate_counters.increment("shared", ttl_seconds=60)
        connections[name] = rate_counters._connection.client.connection

    threads = [threading.Thread(target=count_in_a_thread, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(connection) for connection in connections.values()}) == 3
    assert int(test_redis.get(f"{rate_counters.KEY_PREFIX}shared")) == 3


def test_requests_pass_when_redis_is_down(settings, driver_client, monkeypatch, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(DriverRateThrottle, "rate", "1/min", raising=False)
    attempts = []
    original = redis.connection.Connection.connect
    monkeypatch.setattr(
        redis.connection.Connection, "connect", lambda self: attempts.append(1) or original(self)
    )

    with caplog.at_level(logging.WARNING, logger="core.rate_counters"):
        statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(3)]

    assert statuses == [404, 404, 404]  # not throttled, and not a 500
    assert "Redis did not answer" in caplog.text
    assert len(attempts) == 1  # then Redis is left alone for a few seconds


def test_without_redis_the_counters_live_in_the_django_cache(settings, driver_client, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(DriverRateThrottle, "rate", "1/min", raising=False)
    monkeypatch.setattr(rate_counters, "_increment_script", lambda: pytest.fail("Redis used"))

    statuses = [driver_client.get(CURRENT_URL).status_code for _ in range(2)]

    assert statuses == [404, 429]
    assert error_codes(driver_client.get(CURRENT_URL)) == ["throttled"]


class RestartableRedis:
    """A redis-server of the test's own on a spare loopback port, stopped and started at will."""

    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.directory = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        """Starts the server; returns the moment it first answered."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        probe = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        while True:
            try:
                probe.ping()
                return time.monotonic()
            except redis.RedisError:
                time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None


@pytest.fixture
def restartable_redis(tmp_path, settings):
    server = RestartableRedis(tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    yield server
    server.stop()


def count_on_every_thread(pool: ThreadPoolExecutor, threads: int) -> list[int | None]:
    # The barrier holds each task until all are running: one task per worker thread, each
    # on that thread's own connection, as in a gthread worker.
    barrier = threading.Barrier(threads)

    def count() -> int | None:
        barrier.wait()
        return rate_counters.increment("recovery", ttl_seconds=60)

    return list(pool.map(lambda _: count(), range(threads)))


def test_counting_works_again_within_a_second_of_redis_answering(restartable_redis):
    threads = 4
    with ThreadPoolExecutor(max_workers=threads) as pool:
        assert sorted(count_on_every_thread(pool, threads)) == [1, 2, 3, 4]
        restartable_redis.stop()
        # Requests pass; the first thread to fail pauses Redis for all, so the others never
        # find out on their own that their connections died with the server.
        assert count_on_every_thread(pool, threads) == [None] * threads

        answering_since = restartable_redis.start()
        while None in count_on_every_thread(pool, threads):
            assert time.monotonic() - answering_since < 1.0, "counting did not recover"
            time.sleep(0.02)
