from collections.abc import Callable
from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from parking import services
from parking.idempotency import (
    InvalidIdempotencyKey,
    StoredResponse,
    request_fingerprint,
    run_once,
    validate_idempotency_key,
)
from parking.models import ParkingSession, SecuredParking
from parking.selectors import current_session_for, session_bodies_for
from parking.serializers import (
    ParkingSessionBodySerializer,
    SecuredParkingSerializer,
    StartParkingSessionSerializer,
)
from parking_api.pagination import PagePagination
from parking_api.serializers import EmptyBodySerializer


def session_body(session: ParkingSession, now: datetime) -> dict:
    return ParkingSessionBodySerializer(session, context={"now": now}).data


class CurrentParkingSessionView(APIView):
    """The driver's open parking session; the app asks for it on every launch."""

    def get(self, request: Request) -> Response:
        now = timezone.now()
        session = current_session_for(request.user, now=now)
        if session is None:
            raise NotFound("You have no open parking session.")
        return Response(session_body(session, now))


class ParkingSessionsView(APIView):
    """The driver's sessions, newest first (GET), and starting a new one (POST)."""

    def get(self, request: Request) -> Response:
        now = timezone.now()
        paginator = PagePagination()
        page = paginator.paginate_queryset(session_bodies_for(request.user), request, view=self)
        bodies = ParkingSessionBodySerializer(page, many=True, context={"now": now}).data
        return paginator.get_paginated_response(bodies)

    def post(self, request: Request) -> Response:
        serializer = StartParkingSessionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parking = serializer.validated_data["secured_parking_id"]
        now = timezone.now()

        def start() -> StoredResponse:
            session = services.start_parking_session(
                driver=request.user, secured_parking=parking, now=now
            )
            body = session_body(session_bodies_for(request.user).get(pk=session.pk), now)
            return StoredResponse(status.HTTP_201_CREATED, body)

        key = request.headers.get("Idempotency-Key")
        if key is None:
            response = start()
        else:
            response = run_once(
                driver=request.user,
                key=_valid_idempotency_key(key),
                fingerprint=request_fingerprint(request.path, request.data),
                now=now,
                produce=start,
            )
        headers = {"Idempotent-Replayed": "true"} if response.replayed else {}
        return Response(response.body, status=response.status, headers=headers)


def _valid_idempotency_key(key: str) -> str:
    try:
        return validate_idempotency_key(key)
    except InvalidIdempotencyKey as error:
        raise ValidationError({"Idempotency-Key": [str(error)]}) from error


class ParkingSessionDetailView(APIView):
    def get(self, request: Request, session_id: int) -> Response:
        session = get_object_or_404(session_bodies_for(request.user), pk=session_id)
        return Response(session_body(session, timezone.now()))


class SessionActionView(APIView):
    """POST …/parking_sessions/{id}/<action>: one service call on one of the driver's sessions."""

    service: Callable[..., None]

    def post(self, request: Request, session_id: int) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        sessions = session_bodies_for(request.user)
        session = get_object_or_404(sessions, pk=session_id)
        now = timezone.now()
        self.service(session=session, now=now)
        return Response(session_body(sessions.get(pk=session_id), now))


class EntranceTryView(SessionActionView):
    service = staticmethod(services.spend_entrance_try)


class EnterView(SessionActionView):
    service = staticmethod(services.confirm_entrance)


class ExitView(SessionActionView):
    service = staticmethod(services.request_exit)


class ExitTryView(SessionActionView):
    service = staticmethod(services.spend_exit_try)


class FinalizeView(SessionActionView):
    service = staticmethod(services.finalize_parking_session)


class CancelView(SessionActionView):
    service = staticmethod(services.cancel_parking_session)


class SecuredParkingsView(APIView):
    """Parkings a driver can choose from, with tariff and free places right now."""

    def get(self, request: Request) -> Response:
        now = timezone.now()
        parkings = (
            SecuredParking.objects.with_occupancy(now)
            .select_related("tariff")
            .order_by("name", "id")
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(parkings, request, view=self)
        return paginator.get_paginated_response(SecuredParkingSerializer(page, many=True).data)
