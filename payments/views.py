from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.schema import Errors
from core.serializers import EmptyBodySerializer
from payments import services
from payments.models import Card
from payments.serializers import CardSerializer, CardSetupSerializer


class PaymentMethodsView(APIView):
    """The driver's saved cards (GET) and saving a new one (POST)."""

    pagination_class = None

    @extend_schema(
        operation_id="listPaymentMethods",
        summary="The driver's saved cards",
        description="Brand, last 4 digits and expiry of each card saved with Stripe, oldest "
        "first; `is_default` marks the one starts are paid with.",
        responses=OpenApiResponse(CardSerializer(many=True), description="The cards."),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        cards = services.cards_of(driver=request.user, now=timezone.now())
        return Response(CardSerializer(cards, many=True).data)

    @extend_schema(
        operation_id="addPaymentMethod",
        summary="Start saving a card: a SetupIntent for the app to confirm with Stripe",
        description="The app confirms `client_secret` with Stripe's SDK (the card number goes "
        "to Stripe only); the card then appears in `GET payment_methods`, as the default "
        "when it is the first.",
        request=EmptyBodySerializer,
        responses={
            201: OpenApiResponse(CardSetupSerializer, description="The SetupIntent to confirm."),
            503: Errors("payment_provider_unavailable"),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        setup = services.start_card_setup(driver=request.user, now=timezone.now())
        body = {
            "setup_intent_id": setup.reference,
            "client_secret": setup.client_secret,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        }
        return Response(CardSetupSerializer(body).data, status=status.HTTP_201_CREATED)


class PaymentMethodView(APIView):
    """Removing one of the driver's saved cards."""

    # DELETE has no body either way; the schema says so per operation.
    serializer_class = None

    @extend_schema(
        operation_id="removePaymentMethod",
        summary="Remove a saved card",
        description="Detaches the card from the driver's Stripe Customer. When it was the "
        "default, the next saved card becomes the default; sessions in progress keep the hold "
        "already placed.",
        responses={
            204: OpenApiResponse(description="Removed."),
            404: Errors("not_found"),
            503: Errors("payment_provider_unavailable"),
        },
    )
    def delete(self, request: AuthenticatedRequest, card_id: int) -> Response:
        card = get_object_or_404(Card.objects.filter(driver=request.user), pk=card_id)
        services.remove_card(card=card)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DefaultPaymentMethodView(APIView):
    """Choosing which saved card pays."""

    @extend_schema(
        operation_id="setDefaultPaymentMethod",
        summary="Make a saved card the one starts are paid with",
        description="The other cards stop being the default.",
        request=EmptyBodySerializer,
        responses={
            200: OpenApiResponse(CardSerializer, description="The card, now the default."),
            404: Errors("not_found"),
        },
    )
    def post(self, request: AuthenticatedRequest, card_id: int) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        card = get_object_or_404(Card.objects.filter(driver=request.user), pk=card_id)
        return Response(CardSerializer(services.make_default(card=card)).data)
