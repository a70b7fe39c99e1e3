import time

from rest_framework.throttling import SimpleRateThrottle

from core import rate_counters


class FixedWindowRateThrottle(SimpleRateThrottle):
    """DRF's rate throttle as an atomic counter per time window.

    SimpleRateThrottle keeps a list of timestamps per client and writes it back after a
    read, so two workers can both let a request through, and every request pickles the
    list. Here each window is one counter bumped atomically in one round trip
    (core.rate_counters); the price is that a burst may straddle two windows."""

    # Parsed from the rate by SimpleRateThrottle.__init__ (whole numbers once a rate is set).
    num_requests: int
    duration: int

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        count = rate_counters.increment(f"{key}:{window}", ttl_seconds=self.duration + 1)
        return count is None or count <= self.num_requests

    def wait(self) -> float:
        return self.wait_seconds


class DriverRateThrottle(FixedWindowRateThrottle):
    """Per driver on the API (per client IP for the few anonymous endpoints)."""

    scope = "driver"

    def get_cache_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = request.user.pk
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ClientIPRateThrottle(FixedWindowRateThrottle):
    """Per client IP, whoever is signed in: for sign-up, login and the token endpoint.

    The client IP honours ``NUM_PROXIES`` (DRF's setting), so behind a TLS-terminating
    proxy it is the caller's address, not the proxy's."""

    scope = "sign_in"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AccountRateThrottle(FixedWindowRateThrottle):
    """Per account named in a password form, whichever IP tries it: guesses spread over
    many addresses still meet this limit. A window, never a lockout: the owner can sign in
    again in the next one."""

    scope = "sign_in_account"

    def get_cache_key(self, request, view) -> str | None:
        username = request.POST.get("username", "").strip().lower()
        if not username:
            return None
        return self.cache_format % {"scope": self.scope, "ident": username}


class SignedInAccountRateThrottle(AccountRateThrottle):
    """The per-account limit of the password forms, for a password re-entered through the
    API by a signed-in driver (deleting the account): one counter per account with the
    login form, so a stolen token does not open a second way to guess the password."""

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.email.lower()}
