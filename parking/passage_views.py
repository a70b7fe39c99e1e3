"""Phones relay what barriers signed: ``POST passages``."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from parking.passage_serializers import (
    PassageUploadAnswerSerializer,
    PassageUploadSerializer,
    upload_body,
)
from parking.services.passages import upload_passage_records


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
