"""Why the parking domain refuses an action; parking_api.exceptions turns these into HTTP."""


class ParkingError(Exception):
    code = "parking_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


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
