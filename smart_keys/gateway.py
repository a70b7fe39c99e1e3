"""The HTTP client for barrier gateways: how the backend opens an online parking's barrier.

The contract a gateway implements is in ``docs/barrier-gateway.md``. Every request carries a
request id (body and ``Idempotency-Key`` header) that the gateway uses to open at most once
per id, so a retry after a lost answer cannot open the barrier twice.

Every request goes to an address checked by smart_keys.gateway_urls just before, and to
no other: no redirect is followed and no proxy from the environment is used.
"""

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import requests
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter

from smart_keys.exceptions import (
    BarrierGatewayError,
    BarrierGatewayFailure,
    BarrierGatewayTimeout,
    BarrierGatewayUnreachable,
)
from smart_keys.gateway_urls import GatewayTarget, GatewayURLRefused, resolve_gateway_url
from smart_keys.models import BarrierGateway

logger = logging.getLogger(__name__)

RETRY_PAUSE_SECONDS = 0.2
USER_AGENT = "secured-parking-backend/1"


class GatewayAddressRefused(requests.ConnectionError):
    """The gateway's URL breaks the rules now (its host may resolve elsewhere than when it
    was saved): no request is sent, and the driver is told the gateway cannot be reached."""


class PinnedHostAdapter(HTTPAdapter):
    """Connects to the checked address in the URL while TLS checks the certificate against,
    and names in SNI, the gateway's host name."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.host
        kwargs["assert_hostname"] = self.host
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class OpenRequest:
    """What the backend asks a gateway to open; ``access_points`` are the barriers' MACs."""

    request_id: str
    secured_parking_id: int
    parking_session_id: int
    smart_key_id: int
    direction: str
    access_points: tuple[str, ...]


def request_barrier_open(*, gateway: BarrierGateway, request: OpenRequest) -> None:
    """Returns once the gateway confirmed the barrier opened; raises BarrierGatewayFailure.

    Retries (same request id) only when the request may not have arrived or its answer was
    lost: connection errors and timeouts. An answer, even an error, is final."""
    failure: BarrierGatewayFailure | None = None
    for attempt in range(1, settings.BARRIER_GATEWAY_ATTEMPTS + 1):
        if attempt > 1:
            time.sleep(RETRY_PAUSE_SECONDS)
        try:
            response = _post(gateway, request)
        except requests.Timeout:
            failure = BarrierGatewayTimeout(
                _("The barrier gateway did not answer in time; the try was not spent."),
                attempts=attempt,
            )
        except requests.ConnectionError:
            failure = BarrierGatewayUnreachable(
                _("The barrier gateway cannot be reached; the try was not spent."),
                attempts=attempt,
            )
        except requests.RequestException as error:
            raise BarrierGatewayError(
                format_lazy(
                    _("The barrier gateway request failed ({error}); the try was not spent."),
                    error=type(error).__name__,
                )
            ) from error
        else:
            _ensure_opened(response)
            return
        logger.warning(
            "Barrier gateway attempt %s of %s failed: %s",
            attempt,
            settings.BARRIER_GATEWAY_ATTEMPTS,
            failure.code,
            extra={"request_id": request.request_id, "gateway_id": gateway.pk},
        )
    raise failure or BarrierGatewayError("BARRIER_GATEWAY_ATTEMPTS is 0: no request was sent.")


def _post(gateway: BarrierGateway, request: OpenRequest) -> requests.Response:
    try:
        target = resolve_gateway_url(gateway.url)
    except GatewayURLRefused as refusal:
        logger.warning(
            "Barrier gateway URL refused: %s",
            refusal,
            extra={"request_id": request.request_id, "gateway_id": gateway.pk},
        )
        raise GatewayAddressRefused(str(refusal)) from refusal
    headers = {
        "Host": target.parts.netloc.rpartition("@")[2],
        "Idempotency-Key": request.request_id,
        "User-Agent": USER_AGENT,
    }
    credential = gateway.credential
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    with requests.Session() as session:
        session.trust_env = False  # a proxy would connect wherever it resolves the host
        session.mount("https://", PinnedHostAdapter(target.host))
        return session.post(
            _url_at_checked_address(target),
            json={**asdict(request), "access_points": list(request.access_points)},
            headers=headers,
            timeout=(
                settings.BARRIER_GATEWAY_CONNECT_TIMEOUT,
                settings.BARRIER_GATEWAY_READ_TIMEOUT,
            ),
            # A redirect would re-send the open request somewhere nobody configured.
            allow_redirects=False,
        )


def _url_at_checked_address(target: GatewayTarget) -> str:
    address = str(target.address)
    if target.address.version == 6:
        address = f"[{address}]"
    return target.parts._replace(netloc=f"{address}:{target.port}").geturl()


def _ensure_opened(response: requests.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise BarrierGatewayError(
            format_lazy(
                _("The barrier gateway answered {status}; the try was not spent."),
                status=response.status_code,
            ),
            gateway_status=response.status_code,
        )
    try:
        opened = response.json().get("opened") is True
    except (ValueError, AttributeError):
        opened = False
    if not opened:
        raise BarrierGatewayError(
            _(
                "The barrier gateway did not confirm that the barrier opened; "
                "the try was not spent."
            ),
            gateway_status=response.status_code,
        )
