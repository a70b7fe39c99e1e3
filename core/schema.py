"""OpenAPI description of what the API really answers: the statuses each operation can
return with the error codes of each, the headers, and nothing of the code's docstrings.

Views list their own successes and domain errors in ``extend_schema(responses=...)``, the
errors as ``Errors("code", ...)``; the errors every operation shares (a bad request, a
token, throttling, the database) are added here. Each status has one error component,
``Error<status>``, whose ``code`` enum is every code the API answers with that status
(``error_components`` writes them); ``x-error-codes`` says which codes each operation can
give.
"""

from collections.abc import Iterable
from typing import Any

from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer

from core.serializers import StrictSerializer

BODY_METHODS = ("POST", "PUT", "PATCH")

REQUEST_ID_HEADER = {
    "description": "The caller's `X-Request-ID` when it is 1-128 of `[A-Za-z0-9._:-]`, else "
    "a new one; the server's log line of the request carries it.",
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
    "required": True,
}
WWW_AUTHENTICATE_HEADER = {
    "description": 'RFC 6750: `Bearer realm="api"`, with `error="invalid_token"` when a '
    "token was sent but is invalid, expired or revoked.",
    "schema": {"type": "string"},
    "required": True,
}

ERROR_DESCRIPTIONS = {
    "400": "Bad input: `validation_error` with one entry per field (`attr` names it), or "
    "`client_error` for a body that is not JSON (`parse_error`) or a request refused "
    "before any view runs (`bad_request`: a `Host` not allowed, a NUL character in a "
    "parameter, an invalid `Content-Length`). Nothing was changed.",
    "401": "No bearer token, or one that is invalid, expired or revoked.",
    "402": "Paying needs the driver first: add a card (`payment_method_required`), use "
    "another (`payment_declined`, with `decline_code`), confirm 3-D Secure with "
    "`client_secret` and retry with the same `Idempotency-Key` (`payment_requires_action`), "
    "or pay what a session left unpaid (`outstanding_balance`, with `parking_session_id`). "
    "No session was started and no hold is left.",
    "404": "Not found (another driver's session is not found either).",
    "409": "The state of the session or parking does not allow this; nothing was changed.",
    "413": "The request body is over the size limit (16 KiB by default).",
    "415": "The body is not `application/json`.",
    "422": "This `Idempotency-Key` was used with another request.",
    "429": "Too many requests; wait `Retry-After` seconds.",
    "500": "A server error; nothing of it is shown.",
    "502": "The parking's barrier gateway answered an error or could not be reached; the "
    "try was given back.",
    "503": "The database or the payment provider cannot be reached "
    "(`payment_provider_unavailable`: no session was started and no hold is left); try "
    "again after `Retry-After` seconds.",
    "504": "The parking's barrier gateway did not answer in time; the try was given back.",
}
RETRY_AFTER_STATUSES = ("429", "503")


class Errors:
    """In ``extend_schema(responses=...)``: the operation answers this status with these
    error codes."""

    def __init__(self, *codes: str) -> None:
        self.codes = codes


class BearerTokenScheme(DjangoOAuthToolkitScheme):
    """The OAuth 2 scheme for accounts.authentication's bearer tokens."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    # Either: signing in through OAuth (Swagger UI does it), or pasting a token.
    name = ["oauth2", "bearer"]  # type: ignore[assignment]  # drf-spectacular takes a list

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        bearer = {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from `/o/token/`.",
        }
        return [super().get_security_definition(auto_schema), bearer]


class ParkingAutoSchema(AutoSchema):
    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        # Only what extend_schema says: the views' docstrings are for developers.
        return ""

    def get_auth(self) -> list[dict[str, list[str]]]:
        # An operation without authenticators (sign-up) needs no credentials at all: an
        # empty list, not drf-spectacular's "[{}]" (anonymous allowed among others).
        return super().get_auth() if self.view.get_authenticators() else []

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            operation["x-error-codes"] = self._error_codes()
            if not self.view.get_authenticators():
                operation["security"] = []
        return operation

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        declared = self.get_response_serializers()
        if isinstance(declared, dict):
            responses: dict[str, Any] = {}
            for key, answer in declared.items():
                if isinstance(answer, Errors):
                    continue
                # (status, media type): one representation of several (a receipt's JSON
                # and its printable page), merged into one response.
                status, media_types = (
                    (str(key[0]), list(key[1:])) if isinstance(key, tuple) else (str(key), None)
                )
                response = self._get_response_for_code(
                    answer, status, media_types, direction=direction
                )
                if status in responses:
                    responses[status]["content"].update(response["content"])
                else:
                    responses[status] = response
        else:
            responses = super()._get_response_bodies(direction)
        for status, codes in self._error_codes().items():
            responses[status] = _error_response(status, codes)
        for response in responses.values():
            response.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID_HEADER
        # OpenAPI links from a view's ``response_links``: {status: {name: link}}.
        for status, links in getattr(self.view, "response_links", {}).items():
            if status in responses:
                responses[status]["links"] = links
        return dict(sorted(responses.items()))

    def _error_codes(self) -> dict[str, list[str]]:
        """Each error status this operation can answer, with its codes."""
        codes: dict[str, set[str]] = {"400": {"bad_request"}}
        if self.method in BODY_METHODS or self._deletes_with_a_body():
            codes["400"] |= {"parse_error"} | self._validation_codes()
            codes["413"] = {"request_too_large"}
            codes["415"] = {"unsupported_media_type"}
        if self.method == "GET" and self._get_paginator():
            codes["400"].add("invalid")  # ?page_size=
            codes["404"] = {"not_found"}  # a page that does not exist
        if self.view.get_authenticators():
            codes["401"] = {"not_authenticated"}
        if "{" in self.path:
            codes.setdefault("404", set()).add("not_found")
        declared = self.get_response_serializers()
        if isinstance(declared, dict):
            for status, answer in declared.items():
                if isinstance(answer, Errors):
                    codes.setdefault(str(status), set()).update(answer.codes)
        codes["429"] = {"throttled"}
        codes["500"] = {"error"}
        codes["503"] = {"service_unavailable"}
        return {status: sorted(codes[status]) for status in sorted(codes)}

    def _get_request_body(self, direction: str = "request"):
        # drf-spectacular describes bodies of POST, PUT and PATCH only; deleting the
        # account takes the password again in its body (RFC 9110 leaves a DELETE's body
        # to the API), so a DELETE that declares a request serializer gets it described.
        if not self._deletes_with_a_body():
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def _deletes_with_a_body(self) -> bool:
        return self.method == "DELETE" and self.get_request_serializer() is not None

    def _validation_codes(self) -> set[str]:
        """The codes a validation error of the request body can have: those of its fields'
        messages, and ``invalid`` (an unknown field, a body that is not an object)."""
        serializer = self.get_request_serializer()
        if serializer is None or isinstance(serializer, dict):
            return {"invalid"}
        if isinstance(serializer, type):
            serializer = serializer()
        return {"invalid", *_field_error_codes(serializer.fields.values())}

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # Serializer docstrings are for developers; a public description is given with
        # extend_schema_serializer or a field's help_text.
        schema.pop("description", None)
        description = getattr(serializer, "schema_description", None)
        if description:
            schema["description"] = description
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema

    def _get_response_for_code(
        self, serializer, status_code, media_types=None, direction="response"
    ):
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        if not response.get("description"):
            response["description"] = _success_description(serializer, status_code)
        return response


def _success_description(serializer: Any, status: str) -> str:
    if status == "201":
        return "Created."
    if is_list_serializer(serializer):
        return "The list."
    return "OK."


def _field_error_codes(fields: Iterable[Any]) -> set[str]:
    # A field answers the codes of its messages and of its validators (a NUL or a lone
    # surrogate in a JSON string reaches the field).
    codes: set[str] = set()
    for field in fields:
        codes.update(field.error_messages)
        for validator in field.validators:
            code = getattr(validator, "code", None)
            if isinstance(code, str):
                codes.add(code)
    return codes


def _error_response(status: str, codes: list[str]) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if status in RETRY_AFTER_STATUSES:
        headers["Retry-After"] = RETRY_AFTER_HEADER
    if status == "401":
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE_HEADER
    listed = ", ".join(f"`{code}`" for code in codes)
    return {
        "description": f"{ERROR_DESCRIPTIONS[status]} Codes: {listed}.",
        "headers": headers,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/Error{status}"}}
        },
    }


def error_components(
    operations: Iterable[dict[str, Any]], extra_properties: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``Error<status>`` for every error status of ``operations``: its ``code`` enum holds
    every code they answer with that status. ``extra_properties`` are the members some
    errors add beside ``errors``, by status."""
    codes: dict[str, set[str]] = {}
    for operation in operations:
        for status, operation_codes in operation.get("x-error-codes", {}).items():
            codes.setdefault(status, set()).update(operation_codes)
    return {
        f"Error{status}": _error_schema(status, sorted(codes[status]), extra_properties)
        for status in sorted(codes)
    }


def _error_schema(
    status: str, codes: list[str], extra_properties: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if status == "400":
        types = ["client_error", "validation_error"]
    else:
        types = ["server_error"] if status >= "500" else ["client_error"]
    item = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": codes, "description": "Stable: branch on it."},
            "detail": {"type": "string", "description": "For people; may change."},
            "attr": {
                "type": ["string", "null"],
                "description": "The field in question (`validation_error`), else null.",
            },
        },
        "required": ["code", "detail", "attr"],
    }
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": types},
            "errors": {"type": "array", "items": item, "minItems": 1},
            **extra_properties.get(status, {}),
        },
        "required": ["type", "errors"],
    }
