"""The body of ``POST passages``: records barriers signed, relayed by the app, and the
answer: what became of each, and acknowledgements to hand back to the barriers."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.serializers import StrictCharField, StrictSerializer, UtcSecondsDateTimeField
from parking.services.passages import Upload
from smart_keys.passage_records import RECORD_SIZE

# The longest base64url text of a record, with room for a later version's few bytes.
RECORD_TEXT_MAX = 200


class PassageUploadSerializer(StrictSerializer):
    records = serializers.ListField(
        child=StrictCharField(max_length=RECORD_TEXT_MAX, trim_whitespace=False, allow_blank=False),
        min_length=1,
        max_length=settings.PASSAGE_UPLOAD_MAX_RECORDS,
        help_text="Passage records as the barrier handed them over (base64url text, "
        f"{-(-RECORD_SIZE * 4 // 3)} characters each), any barrier's, anyone's: at most "
        f"{settings.PASSAGE_UPLOAD_MAX_RECORDS} per request.",
    )


class PassageResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The record's place in `records`, from 0.")
    status = serializers.ChoiceField(
        choices=["accepted", "duplicate", "refused"],
        help_text="`accepted`: new evidence, stored; `duplicate`: received before, nothing "
        "changed; `refused`: not taken (see `reason`).",
    )
    reason = serializers.ChoiceField(
        choices=[
            "malformed",
            "unsupported_version",
            "unknown_barrier_key",
            "bad_signature",
            "barrier_key_replaced",
            "sequence_reused",
        ],
        allow_null=True,
        help_text="Why a record was refused; null otherwise.",
    )
    access_point_id = serializers.IntegerField(
        allow_null=True, help_text="The barrier that signed it, when known."
    )
    sequence = serializers.IntegerField(
        allow_null=True, help_text="Its sequence number, when it could be read."
    )


class AcknowledgementSerializer(serializers.Serializer):
    access_point_id = serializers.IntegerField()
    mac_address = serializers.CharField(help_text="The barrier to hand it to.")
    barrier_key_id = serializers.CharField(help_text="The barrier key, 8 hex digits.")
    received_through = serializers.IntegerField(
        help_text="Every record of that key up to this sequence number is held by the backend."
    )
    acknowledgement = serializers.CharField(
        help_text="Signed with the parking's key (docs/passage-record.md): hand it to the "
        "barrier, which then forgets those records."
    )
    time_statement = serializers.CharField(
        help_text="The backend's time, signed with the parking's key: hand it to the "
        "barrier with the acknowledgement, to correct its clock."
    )


class TimeStatementSerializer(serializers.Serializer):
    time_statement = serializers.CharField(
        help_text="Signed with the parking's key (docs/passage-record.md, \"Time "
        "statement\"): hand it to the parking's barriers before the access command."
    )
    issued_at = UtcSecondsDateTimeField()
    valid_seconds = serializers.IntegerField(
        help_text="A barrier corrects its clock to within this of `issued_at`: hand it over soon."
    )


class PassageUploadAnswerSerializer(serializers.Serializer):
    results = PassageResultSerializer(many=True)
    acknowledgements = AcknowledgementSerializer(many=True)


def upload_body(upload: Upload) -> dict[str, Any]:
    """What ``PassageUploadAnswerSerializer`` describes."""
    return {
        "results": [
            {
                "index": index,
                "status": str(receipt.outcome),
                "reason": receipt.reason or None,
                "access_point_id": receipt.barrier_key.access_point_id
                if receipt.barrier_key
                else None,
                "sequence": receipt.sequence,
            }
            for index, receipt in enumerate(upload.receipts)
        ],
        "acknowledgements": [
            {
                "access_point_id": key.access_point_id,
                "mac_address": key.access_point.mac_address,
                "barrier_key_id": key.key_id,
                "received_through": key.received_through,
                "acknowledgement": acknowledgement,
                "time_statement": statement,
            }
            for key, acknowledgement, statement in upload.acknowledgements
        ],
    }
