"""Programs some tests drive (a browser, nginx, servers on loopback): skipped where they are
not installed, and a failure where the environment says they must be (CI sets
REQUIRE_BROWSER, REQUIRE_NGINX); and a free loopback port to run them on."""

import os
import socket

import pytest


def free_port() -> int:
    """A loopback port nothing listens on (as of now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def skip_unless_installed(available: bool, what: str, *, required_by: str) -> None:
    if available:
        return
    if os.environ.get(required_by):
        pytest.fail(f"{what} is missing but {required_by} is set")
    pytest.skip(f"{what} is missing")
