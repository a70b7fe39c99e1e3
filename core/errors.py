from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class DomainError(Exception):
    """A rule of the domain refused an action. ``code`` is stable for API clients to branch
    on; ``details`` are extra members of the error body (e.g. the conflicting session's id).
    parking_api.exceptions turns each kind into its HTTP answer.

    ``message`` is lazy (``gettext_lazy``, ``format_lazy``): it becomes text where it is
    shown, in that reader's language (the driver's answer, the operator's admin page, the
    access log's one language)."""

    code = "domain_error"

    def __init__(self, message: "StrOrPromise", **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
