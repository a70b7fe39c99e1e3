from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from smart_keys.selectors import valid_keys_for
from smart_keys.serializers import SmartKeySerializer


class SmartKeysView(APIView):
    """The driver's currently valid smart keys, each shaped like a session's ``smart_key``."""

    pagination_class = None

    @extend_schema(
        summary="The driver's currently valid smart keys",
        responses=SmartKeySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        keys = valid_keys_for(request.user, now=timezone.now())
        return Response(SmartKeySerializer(keys, many=True).data)
