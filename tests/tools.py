"""Programs some tests drive (a browser, nginx): skipped where they are not installed, and a
failure where the environment says they must be (CI sets REQUIRE_BROWSER, REQUIRE_NGINX)."""

import os

import pytest


def skip_unless_installed(available: bool, what: str, *, required_by: str) -> None:
    if available:
        return
    if os.environ.get(required_by):
        pytest.fail(f"{what} is missing but {required_by} is set")
    pytest.skip(f"{what} is missing")
