import os
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from core import rate_counters, throttling
from tests.api import DriverClient
from tests.factories import DriverFactory, SuperuserFactory
from tests.jobs import job_worker  # noqa: F401 - a fixture, for every test module

MID_WINDOW = 1_800_000_030.0  # 30 s into a one-minute window


def pytest_sessionstart(session: pytest.Session) -> None:
    # CI sets REQUIRE_POSTGRES so a suite that silently fell back to SQLite fails loudly.
    from django.db import connection

    if os.environ.get("REQUIRE_POSTGRES") and connection.vendor != "postgresql":
        pytest.exit(
            f"REQUIRE_POSTGRES is set but the tests would run on {connection.vendor}; "
            "set DATABASE_URL to a PostgreSQL database.",
            returncode=1,
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.db import connection

    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip(
            f"needs PostgreSQL (row locks, real concurrency); running on {connection.vendor}"
        )
    if item.get_closest_marker("redis") and not _redis_answers():
        # CI sets REQUIRE_REDIS: there a missing Redis is a failure, not a skip.
        message = "needs Redis at 127.0.0.1:6379, which does not answer"
        if os.environ.get("REQUIRE_REDIS"):
            pytest.fail(message)
        pytest.skip(message)


def _redis_answers() -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.fixture(autouse=True)
def fast_test_settings(settings):
    # Pages link CSS; the production manifest storage needs collectstatic, tests don't run it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Every factory user hashes a password; a slow hasher only slows the suite down.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Throttle counters live in the cache: each test starts with a clean slate.
    cache.clear()
    rate_counters.resume()


@pytest.fixture(autouse=True)
def no_language_left_active():
    # LocaleMiddleware activates each request's language in the thread and leaves it there
    # (the next request sets its own); code a test runs outside a request must not inherit
    # the last request's Romanian.
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def throttle_clock(monkeypatch):
    # Rate-limit windows restart on the minute; a test's burst must not straddle one.
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: MID_WINDOW))


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def driver(db):
    return DriverFactory()


@pytest.fixture
def driver_client(driver) -> DriverClient:
    return DriverClient(driver)


@pytest.fixture
def make_driver_client(db):
    """Clients for several drivers in one test."""
    return lambda driver=None: DriverClient(driver or DriverFactory())


@pytest.fixture
def superuser_client(client):
    """A back-office browser session of a superuser, who sees every operator's rows."""
    client.force_login(SuperuserFactory())
    return client
