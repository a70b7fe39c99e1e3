"""OpenAPI description of what the API really answers: its OAuth2 scheme and every error."""

from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from drf_spectacular.utils import PolymorphicProxySerializer
from drf_standardized_errors.openapi import AutoSchema
from drf_standardized_errors.openapi_serializers import (
    ClientErrorEnum,
    ServerErrorEnum,
    ValidationErrorEnum,
    ValidationErrorResponseSerializer,
)
from inflection import camelize
from rest_framework import serializers

BODY_METHODS = ("POST", "PUT", "PATCH")


class BearerTokenScheme(DjangoOAuthToolkitScheme):
    target_class = "accounts.authentication.BearerTokenAuthentication"

    def get_security_requirement(self, auto_schema):
        return {self.name: []}


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ClientErrorResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    # DRF's metaclass takes declared fields off the class: this does not shadow .errors.
    errors = ErrorSerializer(many=True)  # type: ignore[assignment]


class BadRequestErrorSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["parse_error", "bad_request"],
        help_text=(
            "`parse_error`: the body is not the JSON it claims to be (malformed, or a key "
            "given twice); `bad_request`: the request itself is refused (a `Host` not "
            "allowed, a NUL character in a parameter, an invalid `Content-Length`)."
        ),
    )
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class BadRequestResponseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    # DRF's metaclass takes declared fields off the class: this does not shadow .errors.
    errors = BadRequestErrorSerializer(many=True)  # type: ignore[assignment]


class ErrorResponse409Serializer(ClientErrorResponseSerializer):
    """The state of the session or parking does not allow the action."""

    parking_session_id = serializers.IntegerField(
        required=False, help_text="With `open_session_exists`: the driver's open session."
    )
    secured_parking_id = serializers.IntegerField(required=False)
    state = serializers.CharField(required=False, help_text="The session's state now.")


class ErrorResponse413Serializer(ClientErrorResponseSerializer):
    pass


class ErrorResponse422Serializer(ClientErrorResponseSerializer):
    pass


class ErrorResponse503Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ServerErrorEnum.choices)
    # DRF's metaclass takes declared fields off the class: this does not shadow .errors.
    errors = ErrorSerializer(many=True)  # type: ignore[assignment]


class ParkingAutoSchema(AutoSchema):
    """Adds 413 to operations with a body and 503 (database unreachable) to all; 409 and
    422 only where a view declares them with ``extend_schema``."""

    def _should_add_error_response(self, responses: dict, status_code: str) -> bool:
        if status_code in ("409", "422"):
            return False
        if status_code == "413":
            takes_body = self.method in BODY_METHODS or self._deletes_with_a_body()
            return takes_body and status_code not in responses
        if status_code == "503":
            return status_code not in responses
        return super()._should_add_error_response(responses, status_code)

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

    def _should_add_parse_error_response(self) -> bool:
        # Every operation can be refused before its view runs (parking_api.middleware).
        return True

    def _get_http400_serializer(self):
        by_type: dict[str, type[serializers.Serializer] | serializers.Serializer] = {
            ClientErrorEnum.CLIENT_ERROR.value: BadRequestResponseSerializer
        }
        if self._should_add_validation_error_response():
            validation = self._get_serializer_for_validation_error_response()
            by_type[ValidationErrorEnum.VALIDATION_ERROR.value] = validation
        return PolymorphicProxySerializer(
            component_name=f"{camelize(self.get_operation_id())}ErrorResponse400",
            serializers=by_type,
            resource_type_field_name="type",
        )

    def _should_add_validation_error_response(self) -> bool:
        # A malformed ?page_size= is a validation error on list endpoints too.
        # So is a DELETE's body that misses a field.
        return (
            super()._should_add_validation_error_response()
            or bool(self._get_paginator())
            or self._deletes_with_a_body()
        )

    def _get_serializer_for_validation_error_response(self):
        # One generic shape: ``attr`` names the field, including fields the client may not
        # send at all (refused by StrictSerializer), which no per-field enum could list.
        return ValidationErrorResponseSerializer
