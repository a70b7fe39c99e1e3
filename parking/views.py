from collections.abc import Callable
from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_serializers import ErrorResponse404Serializer
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.pagination import ShortListPagination
from core.schema import (
    ErrorResponse409Serializer,
    ErrorResponse422Serializer,
    ErrorResponse503Serializer,
)
from core.serializers import EmptyBodySerializer
from parking.idempotency import (
    IDEMPOTENCY_KEY_PATTERN,
    InvalidIdempotencyKey,
    StoredResponse,
    request_fingerprint,
    run_once,
    run_until_answered,
    validate_idempotency_key,
)
from parking.models import ParkingSession, SecuredParking
from parking.pagination import HistoryPagination
from parking.selectors import (
    current_session_for,
    driver_session,
    valid_smart_keys_for,
)
from parking.serializers import (
    OpenBarrierSerializer,
    ParkingSessionBodySerializer,
    SecuredParkingSerializer,
    StartParkingSessionSerializer,
    parking_body,
    session_body,
    smart_key_body,
)
from parking.services import barriers, sessions
from smart_keys.serializers import SmartKeySerializer

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN.pattern},
    OpenApiParameter.HEADER,
    description=(
        "Optional, 1-255 visible ASCII characters (a UUID is ideal). A retry with the same "
        "key replays the first answer; the same key with another body answers 422."
    ),
)


class CurrentParkingSessionView(APIView):
    """The driver's open parking session; the app asks for it on every launch."""

    @extend_schema(
        summary="The driver's open parking session",
        responses={200: ParkingSessionBodySerializer, 404: ErrorResponse404Serializer},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        session = current_session_for(request.user.pk, now=now)
        if session is None:
            raise NotFound(_("You have no open parking session."))
        return Response(session_body(session, now))


class ParkingSessionsView(APIView):
    """The driver's sessions, newest first (GET), and starting a new one (POST)."""

    pagination_class = HistoryPagination

    @extend_schema(
        summary="The driver's parking sessions, newest first",
        responses=ParkingSessionBodySerializer(many=True),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        paginator = self.pagination_class()
        page = paginator.paginate_history(request.user.pk, request)
        return paginator.get_paginated_response([session_body(session, now) for session in page])

    @extend_schema(
        summary="Start a pay-per-use parking session",
        request=StartParkingSessionSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: ParkingSessionBodySerializer,
            409: ErrorResponse409Serializer,
            422: ErrorResponse422Serializer,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = StartParkingSessionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parking = serializer.validated_data["secured_parking_id"]
        now = timezone.now()

        def start() -> StoredResponse:
            session = sessions.start_parking_session(
                driver=request.user, secured_parking=parking, now=now
            )
            return StoredResponse(status.HTTP_201_CREATED, session_body(session, now))

        return idempotent_response(request, now, start, run=run_once)


def idempotent_response(
    request: AuthenticatedRequest,
    now: datetime,
    produce: Callable[..., StoredResponse],
    *,
    run: Callable[..., StoredResponse],
) -> Response:
    """``produce``'s answer; with an ``Idempotency-Key``, through ``run`` (parking.idempotency),
    so that a retry replays it."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        response = produce()
    else:
        response = run(
            driver=request.user,
            key=_valid_idempotency_key(key),
            fingerprint=request_fingerprint(request.path_info, request.data),
            now=now,
            produce=produce,
        )
    headers = {"Idempotent-Replayed": "true"} if response.replayed else {}
    return Response(response.body, status=response.status, headers=headers)


def _valid_idempotency_key(key: str) -> str:
    try:
        return validate_idempotency_key(key)
    except InvalidIdempotencyKey as error:
        raise ValidationError({"Idempotency-Key": [str(error)]}) from error


class ParkingSessionDetailView(APIView):
    @extend_schema(
        summary="One of the driver's parking sessions", responses=ParkingSessionBodySerializer
    )
    def get(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = driver_session(request.user.pk, session_id)
        if session is None:
            raise NotFound()
        return Response(session_body(session, timezone.now()))


class SessionActionView(APIView):
    """POST …/parking_sessions/{id}/<action>: one service call on one of the driver's sessions."""

    service: Callable[..., ParkingSession]

    @extend_schema(
        request=EmptyBodySerializer,
        responses={200: ParkingSessionBodySerializer, 409: ErrorResponse409Serializer},
    )
    def post(self, request: AuthenticatedRequest, session_id: int) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        session = get_object_or_404(ParkingSession.objects.for_driver(request.user), pk=session_id)
        now = timezone.now()
        return Response(session_body(self.service(session=session, now=now), now))


class EntranceTryView(SessionActionView):
    """Spend an entrance try: right before sending the access command to an entrance barrier."""

    service = staticmethod(sessions.spend_entrance_try)


class ConfirmEntranceView(SessionActionView):
    """The entrance barrier opened: the session becomes active."""

    service = staticmethod(sessions.confirm_entrance)


class RequestExitView(SessionActionView):
    """Head for the exit: the amount is fixed and the key opens the exit barriers."""

    service = staticmethod(sessions.request_exit)


class ExitTryView(SessionActionView):
    """Spend an exit try: right before sending the access command to an exit barrier."""

    service = staticmethod(sessions.spend_exit_try)


class FinalizeView(SessionActionView):
    """The driver is out: the session is finished with the amount fixed at exit."""

    service = staticmethod(sessions.finalize_parking_session)


class CancelView(SessionActionView):
    """Give up before entering: the session is cancelled and nothing is due."""

    service = staticmethod(sessions.cancel_parking_session)


class OpenBarrierView(APIView):
    """Online parkings: the backend has the barrier gateway open the entrance (``entering``)
    or exit (``exiting``) barrier, spending a try that a gateway failure gives back."""

    @extend_schema(
        summary="Open the barrier through the parking's gateway (online parkings)",
        description="200 once the gateway confirmed the barrier opened. 502 "
        "(`barrier_gateway_error`, `barrier_gateway_unreachable`) or 504 "
        "(`barrier_gateway_timeout`) when it did not; the try is then not spent.",
        request=OpenBarrierSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: ParkingSessionBodySerializer,
            409: ErrorResponse409Serializer,
            422: ErrorResponse422Serializer,
            502: OpenApiResponse(
                ErrorResponse503Serializer,
                description="The gateway answered an error or could not be reached.",
            ),
            504: OpenApiResponse(
                ErrorResponse503Serializer, description="The gateway did not answer in time."
            ),
        },
    )
    def post(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = get_object_or_404(
            ParkingSession.objects.for_driver(request.user).select_related("smart_key"),
            pk=session_id,
        )
        serializer = OpenBarrierSerializer(
            data=request.data, context={"smart_key": session.smart_key}
        )
        serializer.is_valid(raise_exception=True)
        now = timezone.now()

        def open_it(request_id: str | None = None) -> StoredResponse:
            opened = barriers.open_barrier(
                session=session,
                access_point=serializer.validated_data.get("access_point_id"),
                now=now,
                request_id=request_id,
            )
            return StoredResponse(status.HTTP_200_OK, session_body(opened, now))

        # The gateway's opening cannot be rolled back: a retry must reach it under the same
        # request id, whatever became of the first attempt.
        return idempotent_response(request, now, open_it, run=run_until_answered)


class SecuredParkingsView(APIView):
    """Parkings a driver can choose from, with tariff and free places right now."""

    pagination_class = ShortListPagination

    @extend_schema(
        summary="Secured parkings with tariff and free places",
        responses=SecuredParkingSerializer(many=True),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        parkings = (
            SecuredParking.objects.with_occupancy(now)
            .select_related("tariff")
            .order_by("name", "id")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(parkings, request, view=self)
        return paginator.get_paginated_response([parking_body(parking) for parking in page])


class SmartKeysView(APIView):
    """The driver's currently valid smart keys, each shaped like a session's ``smart_key``."""

    pagination_class = None

    @extend_schema(
        summary="The driver's currently valid smart keys",
        responses=SmartKeySerializer(many=True),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        keys = valid_smart_keys_for(request.user, now=timezone.now())
        return Response([smart_key_body(key, key.secured_parking) for key in keys])
