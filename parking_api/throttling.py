from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class DriverRateThrottle(UserRateThrottle):
    """Per driver on the API (per client IP for the few anonymous endpoints)."""

    scope = "driver"


class ClientIPRateThrottle(SimpleRateThrottle):
    """Per client IP, whoever is signed in: for sign-up, login and the token endpoint.

    The client IP honours ``NUM_PROXIES`` (DRF's setting), so behind a TLS-terminating
    proxy it is the caller's address, not the proxy's."""

    scope = "sign_in"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
