"""Work fired from real threads on real PostgreSQL, released together by a barrier, each
thread with its own database connection (tests that use it commit: ``transaction=True``)."""

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from django.db import connection
from django.http import HttpResponse
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from accounts.models import User
from tests.api import error_code
from tests.factories import AccessTokenFactory

Result = TypeVar("Result")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    headers: dict
    response: HttpResponse


def run_together(calls: list[Callable[[], Result]]) -> list[Result]:
    """Run every call in its own thread, all released at the same moment; their results."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Result]) -> Result:
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            # Each thread has its own connection; left open it would block the flush after the test.
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def fire_together(requests: list[Callable[[], HttpResponse]]) -> list[Answer]:
    """Send every request from its own thread, all released at the same moment."""
    return [
        Answer(response.status_code, response.json(), dict(response.headers), response)
        for response in run_together(requests)
    ]


def bearer_client(token: AccessToken) -> APIClient:
    # A 500 must come back as a status: the test client would otherwise re-raise the
    # exception in whichever thread's request happened to be listening for it.
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
    return client


def clients_of_one_driver(driver: User, count: int) -> list[APIClient]:
    """One bearer token in as many separate clients as phones tapping at once."""
    token = AccessTokenFactory(user=driver)
    return [bearer_client(token) for _ in range(count)]


def clients_of_new_drivers(count: int) -> list[APIClient]:
    return [bearer_client(AccessTokenFactory()) for _ in range(count)]


def statuses(answers: list[Answer]) -> Counter:
    return Counter(answer.status for answer in answers)


def codes(answers: list[Answer], status: int) -> set[str]:
    """The error codes of the answers with ``status``, each answer carrying exactly one."""
    return {error_code(answer.response) for answer in answers if answer.status == status}
