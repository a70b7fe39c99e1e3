"""The schema's parts that know the whole API: the error components (core.schema) with the
members the domain's errors add beside ``errors``."""

from typing import Any

from core.schema import error_components

# parking.exceptions and smart_keys.exceptions put these in their errors' bodies.
ERROR_PROPERTIES: dict[str, dict[str, Any]] = {
    "409": {
        "parking_session_id": {
            "type": "integer",
            "description": "With `open_session_exists`: the driver's open session.",
        },
        "secured_parking_id": {
            "type": "integer",
            "description": "With `parking_unavailable`: the parking.",
        },
        "state": {
            "$ref": "#/components/schemas/StateEnum",
            "description": "With `invalid_session_state` and `no_tries_left`: the "
            "session's state now.",
        },
    },
    "502": {
        "gateway_status": {
            "type": "integer",
            "description": "With `barrier_gateway_error`, when the gateway answered: its "
            "HTTP status.",
        }
    },
}


def add_error_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: one ``Error<status>`` per error status."""
    operations = [
        operation
        for path_item in result["paths"].values()
        for operation in path_item.values()
        if isinstance(operation, dict)
    ]
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(error_components(operations, ERROR_PROPERTIES))
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    return result
