"""Reading the API's one error format in tests (see parking_api/exceptions.py)."""

ERROR_TYPES = {"validation_error", "client_error", "server_error"}


def error_body(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert body["type"] in ERROR_TYPES, body
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
    return body


def error_codes(response) -> list[str]:
    return [error["code"] for error in error_body(response)["errors"]]


def error_detail(response) -> str:
    """The first error's message (non-validation errors have exactly one)."""
    return error_body(response)["errors"][0]["detail"]


def field_errors(response) -> dict[str, list[str]]:
    """Validation errors by field: ``{"secured_parking_id": ["…"], …}``."""
    body = error_body(response)
    assert body["type"] == "validation_error", body
    fields: dict[str, list[str]] = {}
    for error in body["errors"]:
        fields.setdefault(error["attr"], []).append(error["detail"])
    return fields


def error_code(response) -> str:
    """The code of an answer that carries exactly one error."""
    codes = error_codes(response)
    assert len(codes) == 1, codes
    return codes[0]


def one_error(code: str, detail: str, error_type: str = "client_error") -> dict:
    """The whole body of an answer with a single error that names no field."""
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}
