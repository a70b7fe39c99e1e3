class DomainError(Exception):
    """A rule of the domain refused an action. ``code`` is stable for API clients to branch
    on; ``details`` are extra members of the error body (e.g. the conflicting session's id).
    parking_api.exceptions turns each kind into its HTTP answer."""

    code = "domain_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
