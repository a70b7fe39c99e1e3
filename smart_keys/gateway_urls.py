"""Where a barrier gateway may be: an ``https`` URL whose host has only public addresses.

The backend POSTs to the gateway with its credential whenever a driver opens a barrier, so
a gateway URL pointing inside our own network (Redis on loopback, PostgreSQL, the cloud's
metadata service on a link-local address) would let whoever edits it reach those services.
The rule is checked when the URL is saved and again, on freshly resolved addresses, before
every call: a name can resolve elsewhere by then.

``BARRIER_GATEWAY_ALLOW_HTTP`` and ``BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS`` lift the rule
for tests and local development, where the gateway runs on loopback over plain HTTP.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

DEFAULT_PORTS = {"https": 443, "http": 80}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class GatewayURLRefused(ValueError):
    """The URL breaks the rule above, or its host has no address."""


@dataclass(frozen=True)
class GatewayTarget:
    """A gateway URL with the one address the request must be sent to."""

    parts: SplitResult
    host: str
    port: int
    address: IPAddress


def validate_gateway_url(url: str) -> None:
    """The rule as a model field validator, for the admin's forms. With private networks
    allowed the host is not looked up: a name that resolves only where the gateway runs
    can be saved."""
    try:
        parts, host, port = _checked_parts(url)
        if not settings.BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS:
            _checked_addresses(host, port)
    except GatewayURLRefused as refusal:
        raise ValidationError(str(refusal), code="gateway_url_refused") from refusal


def resolve_gateway_url(url: str) -> GatewayTarget:
    """Checks the scheme, resolves the host and checks every address it has; returns the
    first one, which the caller connects to, so that no second lookup can differ."""
    parts, host, port = _checked_parts(url)
    addresses = _checked_addresses(host, port)
    return GatewayTarget(parts=parts, host=host, port=port, address=addresses[0])


def _checked_parts(url: str) -> tuple[SplitResult, str, int]:
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if settings.BARRIER_GATEWAY_ALLOW_HTTP else {"https"}
    if parts.scheme not in allowed_schemes:
        raise GatewayURLRefused("A barrier gateway URL must start with https://.")
    host = parts.hostname
    if not host:
        raise GatewayURLRefused("A barrier gateway URL must name a host.")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as error:
        raise GatewayURLRefused(f"The gateway URL's port is not valid: {error}.") from error
    return parts, host, port


def _checked_addresses(host: str, port: int) -> list[IPAddress]:
    addresses = _addresses_of(host, port)
    if not settings.BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            if not is_public(address):
                raise GatewayURLRefused(
                    f"{host} resolves to {address}, which is not a public address: "
                    "a barrier gateway must be reachable on the internet."
                )
    return addresses


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _addresses_of(host: str, port: int) -> list[IPAddress]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise GatewayURLRefused(f"{host} cannot be resolved ({error}).") from error
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise GatewayURLRefused(f"{host} has no address.")
    return addresses
