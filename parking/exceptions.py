"""Why the parking domain refuses an action; parking_api.exceptions turns these into HTTP."""

from core.errors import DomainError


class ParkingError(DomainError):
    """The parking domain refuses the action; the API answers 409."""

    code = "parking_error"


class SessionStateError(ParkingError):
    """The session's state does not allow the action."""

    code = "invalid_session_state"


class NoTriesLeft(SessionStateError):
    code = "no_tries_left"


class OpenSessionExists(ParkingError):
    code = "open_session_exists"


class ParkingUnavailable(ParkingError):
    """The parking does not take new sessions: inactive, full, or without a tariff."""

    code = "parking_unavailable"
