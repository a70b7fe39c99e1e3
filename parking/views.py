import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.errors import DomainError
from core.schema import Errors
from core.serializers import EmptyBodySerializer
from parking.idempotency import (
    IDEMPOTENCY_KEY_PATTERN,
    InvalidIdempotencyKey,
    StoredResponse,
    answered,
    request_fingerprint,
    run_once,
    run_until_answered,
    validate_idempotency_key,
)
from parking.models import ParkingSession, State
from parking.pagination import PageReadPagination
from parking.receipts import receipt_for
from parking.renderers import AcceptHeaderNegotiation, ReceiptPageRenderer
from parking.selectors import (
    current_session_for,
    driver_history_page,
    driver_session,
    parking_list_page,
    valid_smart_keys_for,
)
from parking.serializers import (
    BarrierChoiceSerializer,
    OpenBarrierSerializer,
    ParkingSessionBodySerializer,
    ReceiptSerializer,
    SecuredParkingSerializer,
    StartParkingSessionSerializer,
    parking_body,
    session_body,
    smart_key_body,
)
from parking.services import barriers, paying, sessions
from payments.models import Payment
from payments.serializers import PaymentSerializer
from smart_keys.models import Direction
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


def idempotent_replayed_header(status: int) -> OpenApiParameter:
    return OpenApiParameter(
        "Idempotent-Replayed",
        {"type": "string", "enum": ["true"]},
        OpenApiParameter.HEADER,
        response=[status],
        description="`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key`; absent otherwise.",
    )


CURRENT_SESSION_EXAMPLE = OpenApiExample(
    "An active session",
    value=json.loads(
        (settings.BASE_DIR / "docs" / "examples" / "current-parking-session.json").read_text()
    ),
    response_only=True,
)
SESSION_BODY = "The session, shaped like `GET parking_sessions/current`."
SESSION_ID = "$response.body#/parking_session/id"
# OpenAPI links: which operation can follow which, with the session's id (schemathesis
# follows them in its stateful phase; clients see the journey).
SESSION_LINKS = {
    name: {"operationId": operation, "parameters": {"session_id": SESSION_ID}}
    for name, operation in [
        ("getParkingSession", "getParkingSession"),
        ("spendEntranceTry", "spendEntranceTry"),
        ("confirmEntrance", "confirmEntrance"),
        ("requestExit", "requestExit"),
        ("spendExitTry", "spendExitTry"),
        ("finalizeParkingSession", "finalizeParkingSession"),
        ("cancelParkingSession", "cancelParkingSession"),
        ("openBarrier", "openBarrier"),
    ]
}


class CurrentParkingSessionView(APIView):
    """The driver's open parking session; the app asks for it on every launch."""

    response_links = {"200": SESSION_LINKS}

    @extend_schema(
        operation_id="getCurrentParkingSession",
        summary="The driver's open parking session",
        description="The session in `entering`, `active` or `exiting`, if any: the app asks "
        "for it on every launch. `amount` is what is due so far while `active`, fixed "
        "from `exit` on.",
        responses={
            200: OpenApiResponse(
                ParkingSessionBodySerializer,
                description="The open session.",
                examples=[CURRENT_SESSION_EXAMPLE],
            ),
            404: Errors("not_found"),
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        session = current_session_for(request.user.pk, now=now)
        if session is None:
            raise NotFound(_("You have no open parking session."))
        return Response(session_body(session, now))


class ParkingSessionsView(APIView):
    """The driver's sessions, newest first (GET), and starting a new one (POST)."""

    pagination_class = PageReadPagination

    response_links = {"201": SESSION_LINKS}

    @extend_schema(
        operation_id="listParkingSessions",
        summary="The driver's parking sessions, newest first",
        description="Every session of the driver, open or closed, newest first, each "
        "shaped like `GET parking_sessions/current`.",
        responses=OpenApiResponse(
            ParkingSessionBodySerializer(many=True), description="A page of sessions."
        ),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        paginator = self.pagination_class()
        page = paginator.paginate_read(partial(driver_history_page, request.user.pk), request)
        return paginator.get_paginated_response([session_body(session, now) for session in page])

    @extend_schema(
        operation_id="startParkingSession",
        summary="Start a pay-per-use parking session",
        description="A session in `entering`, with a `session_access` key whose access "
        "command opens the entrance barriers, or only `access_point_id`, the one the phone "
        "sees (required where the parking sets `access_point_required`). Refused while "
        "the driver has an open session (`open_session_exists`, the body names it), or "
        "when the parking is inactive, full or has no tariff (`parking_unavailable`).",
        request=StartParkingSessionSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER, idempotent_replayed_header(201)],
        responses={
            201: OpenApiResponse(ParkingSessionBodySerializer, description="Started."),
            402: Errors(
                "payment_method_required",
                "payment_declined",
                "payment_requires_action",
                "outstanding_balance",
            ),
            409: Errors("open_session_exists", "parking_unavailable"),
            422: Errors("idempotency_key_reused"),
            503: Errors("payment_provider_unavailable"),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = StartParkingSessionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parking = serializer.validated_data["secured_parking_id"]
        access_point = serializer.validated_data.get("access_point_id")
        now = timezone.now()
        key = _idempotency_key(request)
        if key is not None:
            replay = answered(driver=request.user, key=key, fingerprint=_fingerprint(request))
            if replay is not None:
                return _response(replay)
        # The hold is placed before the session's transaction, which does not wait on Stripe.
        payment = paying.hold_for_start(
            driver=request.user, parking=parking, idempotency_key=key, now=now
        )

        def start() -> StoredResponse:
            session = sessions.start_parking_session(
                driver=request.user,
                secured_parking=parking,
                now=now,
                payment=payment,
                access_point=access_point,
            )
            return StoredResponse(status.HTTP_201_CREATED, session_body(session, now))

        try:
            return idempotent_response(request, now, start, run=run_once)
        except DomainError:
            paying.release_unused_hold(payment=payment, now=now)
            raise


def idempotent_response(
    request: AuthenticatedRequest,
    now: datetime,
    produce: Callable[..., StoredResponse],
    *,
    run: Callable[..., StoredResponse],
) -> Response:
    """``produce``'s answer; with an ``Idempotency-Key``, through ``run`` (parking.idempotency),
    so that a retry replays it."""
    key = _idempotency_key(request)
    if key is None:
        response = produce()
    else:
        response = run(
            driver=request.user,
            key=key,
            fingerprint=_fingerprint(request),
            now=now,
            produce=produce,
        )
    return _response(response)


def _response(response: StoredResponse) -> Response:
    headers = {"Idempotent-Replayed": "true"} if response.replayed else {}
    return Response(response.body, status=response.status, headers=headers)


def _fingerprint(request: AuthenticatedRequest) -> str:
    return request_fingerprint(request.path_info, request.data)


def _idempotency_key(request: AuthenticatedRequest) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    try:
        return validate_idempotency_key(key)
    except InvalidIdempotencyKey as error:
        raise ValidationError({"Idempotency-Key": [str(error)]}) from error


class ParkingSessionDetailView(APIView):
    @extend_schema(
        operation_id="getParkingSession",
        summary="One of the driver's parking sessions",
        description="Shaped like `GET parking_sessions/current`. Another driver's session "
        "answers 404.",
        responses=OpenApiResponse(ParkingSessionBodySerializer, description=SESSION_BODY),
    )
    def get(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = driver_session(request.user.pk, session_id)
        if session is None:
            raise NotFound()
        return Response(session_body(session, timezone.now()))


def session_action(
    operation_id: str,
    summary: str,
    description: str,
    *,
    conflicts: tuple[str, ...],
    names_a_barrier: bool = False,
):
    """The schema of one ``SessionActionView``: its name, words and 409 codes, and its
    optional body when it issues a command (``names_a_barrier``)."""
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            summary=summary,
            description=description,
            request=BarrierChoiceSerializer if names_a_barrier else None,
            responses={
                200: OpenApiResponse(ParkingSessionBodySerializer, description=SESSION_BODY),
                409: Errors(*conflicts),
            },
        )
    )


class SessionActionView(APIView):
    """POST …/parking_sessions/{id}/<action>: one service call on one of the driver's sessions."""

    service: Callable[..., ParkingSession]
    response_links = {"200": SESSION_LINKS}

    # No body is documented: the actions take none (an empty one or `{}` is accepted).
    @extend_schema(request=None)
    def post(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = get_object_or_404(
            ParkingSession.objects.for_driver(request.user).select_related("secured_parking"),
            pk=session_id,
        )
        arguments = self.arguments(request, session)
        now = timezone.now()
        return Response(session_body(self.service(session=session, now=now, **arguments), now))

    def arguments(self, request: AuthenticatedRequest, session: ParkingSession) -> dict:
        """What the body adds to the service's arguments: nothing."""
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        return {}


class CommandActionView(SessionActionView):
    """An action that issues an access command for the ``direction`` barriers; its body may
    name the one the phone sees (``access_point_id``)."""

    direction: Direction

    def arguments(self, request: AuthenticatedRequest, session: ParkingSession) -> dict:
        parking = session.secured_parking
        serializer = BarrierChoiceSerializer(
            data=request.data,
            context={
                "access_points": parking.access_points.filter(direction=self.direction),
                "required": parking.access_point_required,
            },
        )
        serializer.is_valid(raise_exception=True)
        return {"access_point": serializer.validated_data.get("access_point_id")}


@session_action(
    "spendEntranceTry",
    "Spend an entrance try",
    "In `entering` with tries left: spends one and returns a fresh access command "
    "for the entrance barriers, or only `access_point_id`, the one the phone sees.",
    conflicts=("invalid_session_state", "no_tries_left"),
    names_a_barrier=True,
)
class EntranceTryView(CommandActionView):
    """Spend an entrance try: right before sending the access command to an entrance barrier."""

    service = staticmethod(sessions.spend_entrance_try)
    direction = Direction.ENTRANCE


@session_action(
    "confirmEntrance",
    "The entrance barrier opened",
    "`entering` → `active`.",
    conflicts=("invalid_session_state",),
)
class ConfirmEntranceView(SessionActionView):
    """The entrance barrier opened: the session becomes active."""

    service = staticmethod(sessions.confirm_entrance)


@session_action(
    "requestExit",
    "Head for the exit",
    "`active` → `exiting`: the amount is computed and fixed; the key now opens the exit "
    "barriers (its command only `access_point_id`, when given).",
    conflicts=("invalid_session_state",),
    names_a_barrier=True,
)
class RequestExitView(CommandActionView):
    """Head for the exit: the amount is fixed and the key opens the exit barriers."""

    service = staticmethod(sessions.request_exit)
    direction = Direction.EXIT


@session_action(
    "spendExitTry",
    "Spend an exit try",
    "In `exiting` with tries left: spends one and returns a fresh access command "
    "for the exit barriers, or only `access_point_id`, the one the phone sees.",
    conflicts=("invalid_session_state", "no_tries_left"),
    names_a_barrier=True,
)
class ExitTryView(CommandActionView):
    """Spend an exit try: right before sending the access command to an exit barrier."""

    service = staticmethod(sessions.spend_exit_try)
    direction = Direction.EXIT


@session_action(
    "finalizeParkingSession",
    "Finish the session",
    "`exiting` → `finished`: `end_time` is set and the amount fixed at the exit is final.",
    conflicts=("invalid_session_state",),
)
class FinalizeView(SessionActionView):
    """The driver is out: the session is finished with the amount fixed at exit."""

    service = staticmethod(sessions.finalize_parking_session)


@session_action(
    "cancelParkingSession",
    "Cancel before entering",
    "`entering` → `cancelled`; the amount is `0.00`.",
    conflicts=("invalid_session_state",),
)
class CancelView(SessionActionView):
    """Give up before entering: the session is cancelled and nothing is due."""

    service = staticmethod(sessions.cancel_parking_session)


class OpenBarrierView(APIView):
    """Online parkings: the backend has the barrier gateway open the entrance (``entering``)
    or exit (``exiting``) barrier, spending a try that a gateway failure gives back."""

    response_links = {"200": SESSION_LINKS}

    @extend_schema(
        operation_id="openBarrier",
        summary="Open the barrier through the parking's gateway (online parkings)",
        description="Spends an entrance (`entering`) or exit (`exiting`) try and has the "
        "parking's barrier gateway open the barrier: 200 once the gateway confirmed it. "
        "502 or 504 when it did not; the try is then given back. 409 "
        "`barrier_gateway_not_configured` for a parking without a gateway (its barriers "
        "open with the access command).",
        request=OpenBarrierSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER, idempotent_replayed_header(200)],
        responses={
            200: OpenApiResponse(
                ParkingSessionBodySerializer, description="The gateway opened the barrier."
            ),
            409: Errors("invalid_session_state", "no_tries_left", "barrier_gateway_not_configured"),
            422: Errors("idempotency_key_reused"),
            502: Errors("barrier_gateway_error", "barrier_gateway_unreachable"),
            504: Errors("barrier_gateway_timeout"),
        },
    )
    def post(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = get_object_or_404(
            ParkingSession.objects.for_driver(request.user).select_related("smart_key"),
            pk=session_id,
        )
        serializer = OpenBarrierSerializer(
            data=request.data, context={"access_points": session.smart_key.access_points.all()}
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

    pagination_class = PageReadPagination

    @extend_schema(
        operation_id="listSecuredParkings",
        summary="Secured parkings with tariff and free places",
        description="Every parking, by name, with its tariff and its free places now.",
        responses=OpenApiResponse(
            SecuredParkingSerializer(many=True), description="A page of parkings."
        ),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_read(partial(parking_list_page, now=timezone.now()), request)
        return paginator.get_paginated_response([parking_body(parking) for parking in page])


class SmartKeysView(APIView):
    """The driver's currently valid smart keys, each shaped like a session's ``smart_key``."""

    pagination_class = None

    @extend_schema(
        operation_id="listSmartKeys",
        summary="The driver's currently valid smart keys",
        description="Keys of open sessions, each shaped like a session's `smart_key`; "
        "expired keys and keys of closed sessions are not offered.",
        responses=OpenApiResponse(SmartKeySerializer(many=True), description="The keys."),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        keys = valid_smart_keys_for(request.user, now=timezone.now())
        return Response([smart_key_body(key, key.secured_parking) for key in keys])


class ParkingSessionPaymentView(APIView):
    """How one of the driver's sessions is paid: hold, amount, captured, refunded, history."""

    @extend_schema(
        operation_id="getParkingSessionPayment",
        summary="The payment of one of the driver's parking sessions",
        description="The hold placed at start, the amount fixed at exit, what was captured, "
        "refunded (each refund: amount, when, Stripe's reference) and is still owed, and "
        "every step in order. 404 for a session that pays "
        "no card (a free parking).",
        responses={
            200: OpenApiResponse(PaymentSerializer, description="The payment."),
            404: Errors("not_found"),
        },
    )
    def get(self, request: AuthenticatedRequest, session_id: int) -> Response:
        session = get_object_or_404(ParkingSession.objects.for_driver(request.user), pk=session_id)
        if session.payment_id is None:
            raise NotFound(_("This parking session has no card payment."))
        payment = Payment.objects.prefetch_related("events", "refunds").get(pk=session.payment_id)
        return Response(PaymentSerializer(payment).data)


class PayParkingSessionView(APIView):
    """Settle what a finished session's capture could not take (``outstanding_balance``)."""

    @extend_schema(
        operation_id="payParkingSession",
        summary="Pay a finished session's outstanding balance with the default card",
        description="For a session whose capture at exit failed (`outstanding_balance` on "
        "the next start): charges what is owed off-session. 409 `nothing_to_pay` when "
        "nothing is owed.",
        request=EmptyBodySerializer,
        responses={
            200: OpenApiResponse(PaymentSerializer, description="The payment, settled."),
            402: Errors("payment_method_required", "payment_declined"),
            409: Errors("nothing_to_pay"),
            503: Errors("payment_provider_unavailable"),
        },
    )
    def post(self, request: AuthenticatedRequest, session_id: int) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        session = get_object_or_404(ParkingSession.objects.for_driver(request.user), pk=session_id)
        payment = paying.pay_outstanding(session=session, now=timezone.now())
        return Response(PaymentSerializer(payment).data)


def _finished_session(request: AuthenticatedRequest, session_id: int) -> ParkingSession:
    session = get_object_or_404(
        ParkingSession.objects.for_driver(request.user)
        .select_related("secured_parking__operator", "payment")
        .prefetch_related("payment__refunds"),
        pk=session_id,
    )
    if session.state != State.FINISHED:
        raise NotFound(_("A receipt is issued once the parking session is finished."))
    return session


class ReceiptView(APIView):
    """The receipt of one of the driver's finished sessions: the JSON document, or with
    ``Accept: text/html`` the same document as a printable page. Errors stay JSON."""

    renderer_classes = [*APIView.renderer_classes, ReceiptPageRenderer]
    content_negotiation_class = AcceptHeaderNegotiation

    @extend_schema(
        operation_id="getReceipt",
        summary="The receipt of a finished parking session",
        description="Seller (legal name, tax id), parking, times, the tariff agreed at "
        "entry, amount with its VAT, and the payment with its refunds. JSON by default; "
        "`Accept: text/html` answers the same receipt as a printable page (print CSS, no "
        "scripts, nothing loaded from elsewhere) in the request's language "
        "(`Accept-Language`). Errors are JSON either way. 404 until the session is finished.",
        # Chosen by Accept alone (AcceptHeaderNegotiation): no ?format= to describe.
        parameters=[OpenApiParameter("format", exclude=True)],
        responses={
            (200, "application/json"): OpenApiResponse(
                ReceiptSerializer,
                description="The receipt: JSON, or a printable HTML page with `Accept: text/html`.",
            ),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
            404: Errors("not_found"),
        },
    )
    def get(self, request: AuthenticatedRequest, session_id: int) -> Response:
        return Response(receipt_for(_finished_session(request, session_id)))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # The page is for a successful answer only: an error is the API's JSON error, for
        # the app to read, whatever the request accepted.
        if response.status_code >= 400:
            request.accepted_renderer = self.renderer_classes[0]()
            request.accepted_media_type = request.accepted_renderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ["Accept"])
        return response
