"""Phones relay what barriers signed (``POST passages``) and carry the backend's time to
barriers without a network (``GET secured_parkings/{id}/time_statement``)."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.datetimes import iso_seconds
from core.schema import Errors
from parking.models import SecuredParking
from parking.passage_serializers import (
    PassageUploadAnswerSerializer,
    PassageUploadSerializer,
    TimeStatementSerializer,
    upload_body,
)
from parking.services.passages import upload_passage_records
from smart_keys.passages import time_statement_for


class PassagesView(APIView):
    """Any driver's app uploads the records a barrier handed it, whoever's they are."""

    @extend_schema(
        operation_id="uploadPassageRecords",
        summary="Relay the passage records a barrier handed over",
        description="Records barriers signed for their openings (docs/passage-record.md), "
        "from any barrier and about anyone's session: the app uploads every record a barrier "
        "hands it. Each is answered `accepted`, `duplicate` (received before; a replay "
        "changes nothing) or `refused` with a reason, in order; a refused record does not "
        "stop the others. For every barrier key the upload brought records of, an "
        "`acknowledgement` signed with the parking's key, which the app hands back to that "
        "barrier so it can forget the records the backend holds.",
        request=PassageUploadSerializer,
        responses={
            200: OpenApiResponse(
                PassageUploadAnswerSerializer, description="What became of each record."
            )
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = PassageUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = upload_passage_records(
            records=serializer.validated_data["records"], now=timezone.now()
        )
        return Response(upload_body(upload))


class TimeStatementView(APIView):
    """A fresh signed time statement for the barriers of one parking."""

    @extend_schema(
        operation_id="getTimeStatement",
        summary="The backend's time, signed for the parking's barriers",
        description="A time statement signed with the parking's key (docs/passage-record.md): "
        "the app fetches one while it has a network and hands it to a barrier before its "
        "access command, so a barrier that is never online keeps its clock right. Any "
        "driver may fetch one for any parking.",
        responses={
            200: OpenApiResponse(TimeStatementSerializer, description="The statement."),
            404: Errors("not_found"),
        },
    )
    def get(self, request: AuthenticatedRequest, parking_id: int) -> Response:
        parking = get_object_or_404(SecuredParking, pk=parking_id)
        now = timezone.now()
        return Response(
            {
                "time_statement": time_statement_for(secured_parking_id=parking.pk, now=now),
                "issued_at": iso_seconds(now),
                "valid_seconds": int(settings.TIME_STATEMENT_VALIDITY.total_seconds()),
            }
        )
