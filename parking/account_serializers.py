"""The account endpoints' bodies: the password a deletion asks for again, and the export,
written by ``account_export_body`` and described by the serializers below for the schema."""

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.datetimes import iso_seconds
from core.serializers import StrictSerializer, UtcSecondsDateTimeField
from parking.models import AuditAction
from parking.selectors import AccountData
from parking.serializers import ParkingSessionBodySerializer, session_body
from smart_keys.models import AccessEvent, AccessResult, Direction


class AccountDeletionSerializer(StrictSerializer):
    """Needs ``context={"driver": …}``: the password is checked against that account."""

    password = serializers.CharField(
        max_length=128,
        write_only=True,
        trim_whitespace=False,
        help_text="The account's password, entered again.",
        error_messages={"wrong_password": _("The password is wrong.")},
    )

    def validate_password(self, value: str) -> str:
        if not self.context["driver"].check_password(value):
            message = self.fields["password"].error_messages["wrong_password"]
            raise serializers.ValidationError(message, code="wrong_password")
        return value


def account_export_body(data: AccountData, now: datetime) -> dict[str, Any]:
    """Everything held about the driver. Token values are never in it: only what each
    token is for and how long it lives."""
    driver = data.driver
    return {
        "exported_at": iso_seconds(now),
        "profile": {
            "id": driver.pk,
            "email": driver.email,
            "first_name": driver.first_name,
            "last_name": driver.last_name,
            "is_active": driver.is_active,
            "date_joined": iso_seconds(driver.date_joined),
            "last_login": iso_seconds(driver.last_login),
        },
        "parking_sessions": [session_body(session, now) for session in data.parking_sessions],
        "back_office_actions": [
            {
                "parking_session_id": entry.session_id,
                "action": entry.action,
                "reason": entry.reason,
                "details": entry.details,
                "created_at": iso_seconds(entry.created_at),
            }
            for entry in data.back_office_actions
        ],
        "access_log": [
            {
                "id": entry.pk,
                "created_at": iso_seconds(entry.created_at),
                "event": entry.event,
                "result": entry.result,
                "direction": entry.direction,
                "secured_parking_id": entry.secured_parking_id,
                "parking_session_id": entry.parking_session_id,
                "smart_key_id": entry.smart_key_id,
                "access_point_id": entry.access_point_id,
                "detail": entry.detail,
            }
            for entry in data.access_log
        ],
        "oauth_tokens": {
            "access_tokens": [
                {
                    "id": token.pk,
                    "application": token.application.name if token.application else None,
                    "scope": token.scope,
                    "created": iso_seconds(token.created),
                    "expires": iso_seconds(token.expires),
                }
                for token in data.oauth.access_tokens
            ],
            "refresh_tokens": [
                {
                    "id": token.pk,
                    "application": token.application.name,
                    "created": iso_seconds(token.created),
                    "revoked": iso_seconds(token.revoked),
                }
                for token in data.oauth.refresh_tokens
            ],
            "authorization_grants": [
                {
                    "id": grant.pk,
                    "application": grant.application.name,
                    "scope": grant.scope,
                    "created": iso_seconds(grant.created),
                    "expires": iso_seconds(grant.expires),
                }
                for grant in data.oauth.authorization_grants
            ],
        },
        "idempotency_keys": [
            {
                "key": record.key,
                "response_status": record.response_status,
                "created_at": iso_seconds(record.created_at),
            }
            for record in data.idempotency_records
        ],
    }


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    date_joined = UtcSecondsDateTimeField()
    last_login = UtcSecondsDateTimeField(allow_null=True)


class BackOfficeActionSerializer(serializers.Serializer):
    parking_session_id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    reason = serializers.CharField()
    details = serializers.DictField(help_text="What the action changed: `[before, after]`.")
    created_at = UtcSecondsDateTimeField()


class AccessLogEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = UtcSecondsDateTimeField()
    event = serializers.ChoiceField(choices=AccessEvent.choices)
    result = serializers.ChoiceField(choices=AccessResult.choices)
    direction = serializers.ChoiceField(choices=Direction.choices)
    secured_parking_id = serializers.IntegerField()
    parking_session_id = serializers.IntegerField()
    smart_key_id = serializers.IntegerField()
    access_point_id = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class AccessTokenMetadataSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    application = serializers.CharField(allow_null=True)
    scope = serializers.CharField()
    created = UtcSecondsDateTimeField()
    expires = UtcSecondsDateTimeField()


class RefreshTokenMetadataSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    application = serializers.CharField()
    created = UtcSecondsDateTimeField()
    revoked = UtcSecondsDateTimeField(allow_null=True)


class GrantMetadataSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    application = serializers.CharField()
    scope = serializers.CharField()
    created = UtcSecondsDateTimeField()
    expires = UtcSecondsDateTimeField()


class OAuthTokensSerializer(serializers.Serializer):
    access_tokens = AccessTokenMetadataSerializer(many=True)
    refresh_tokens = RefreshTokenMetadataSerializer(many=True)
    authorization_grants = GrantMetadataSerializer(
        many=True, help_text="Authorization codes issued and not yet exchanged."
    )


class IdempotencyKeySerializer(serializers.Serializer):
    key = serializers.CharField()
    response_status = serializers.IntegerField()
    created_at = UtcSecondsDateTimeField()


class AccountExportSerializer(serializers.Serializer):
    """Everything held about the driver; tokens by their metadata, never their values."""

    exported_at = UtcSecondsDateTimeField()
    profile = ProfileSerializer()
    parking_sessions = ParkingSessionBodySerializer(
        many=True, help_text="Every session, newest first, each with its smart key."
    )
    back_office_actions = BackOfficeActionSerializer(
        many=True, help_text="What operators did to the driver's sessions, and why."
    )
    access_log = AccessLogEntrySerializer(
        many=True, help_text="Every command issued, try and barrier opening, oldest first."
    )
    oauth_tokens = OAuthTokensSerializer()
    idempotency_keys = IdempotencyKeySerializer(
        many=True, help_text="`Idempotency-Key`s still remembered (for 24 hours)."
    )
