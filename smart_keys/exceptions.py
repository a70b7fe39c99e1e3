"""Why an access, open or key rotation request failed; parking_api.exceptions turns these
into HTTP."""

from core.errors import DomainError


class BarrierGatewayNotConfigured(DomainError):
    """The parking has no enabled barrier gateway: its barriers open with the access command."""

    code = "barrier_gateway_not_configured"


class BarrierGatewayFailure(DomainError):
    """The gateway did not confirm that the barrier opened; the try was given back."""

    code = "barrier_gateway_error"


class BarrierGatewayError(BarrierGatewayFailure):
    """The gateway answered, but not with a confirmed opening (an error status, or no
    ``"opened": true``)."""

    code = "barrier_gateway_error"


class BarrierGatewayUnreachable(BarrierGatewayFailure):
    """No connection could be made to the gateway, even after retrying."""

    code = "barrier_gateway_unreachable"


class BarrierGatewayTimeout(BarrierGatewayFailure):
    """The gateway did not answer in time, even after retrying."""

    code = "barrier_gateway_timeout"


class KeyRotationPending(DomainError):
    """The parking already has a next key pair waiting for its switch."""

    code = "key_rotation_pending"


class NoNextKeyPair(DomainError):
    """There is no next key pair to switch to: rotate first."""

    code = "no_next_key_pair"


class InvalidBarrierKey(DomainError):
    """Not a raw Ed25519 public key in hex (64 hex digits)."""

    code = "invalid_barrier_key"


class BarrierKeyInUse(DomainError):
    """The public key is registered on another access point: each barrier makes its own."""

    code = "barrier_key_in_use"
