"""The driver's account rights: deleting the account, and a copy of everything held."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.schema import Errors
from core.throttling import DriverRateThrottle, SignedInAccountRateThrottle
from parking.account_serializers import (
    AccountDeletionSerializer,
    AccountExportSerializer,
    account_export_body,
)
from parking.selectors import account_data
from parking.services.accounts import delete_driver_account


class AccountView(APIView):
    throttle_classes = [DriverRateThrottle, SignedInAccountRateThrottle]

    @extend_schema(
        operation_id="deleteAccount",
        summary="Delete the driver's account",
        description=(
            "Asks for the password again. Every token is revoked and the account's personal "
            "data erased; sessions and the access log stay, anonymised, as accounting "
            "records. Refused with 409 while a parking session is open."
        ),
        request=AccountDeletionSerializer,
        responses={
            204: OpenApiResponse(description="The account is deleted; its tokens no longer work."),
            409: Errors("open_session_exists", "back_office_account"),
        },
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        serializer = AccountDeletionSerializer(data=request.data, context={"driver": request.user})
        serializer.is_valid(raise_exception=True)
        delete_driver_account(driver=request.user, now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountExportView(APIView):
    @extend_schema(
        operation_id="exportAccount",
        summary="Everything held about the driver",
        description=(
            "Profile, parking sessions with their smart keys, back-office actions on them, "
            "the access log, OAuth tokens (metadata only, never their values) and "
            "remembered `Idempotency-Key`s, as one JSON document (GDPR Articles 15 and 20)."
        ),
        responses={200: AccountExportSerializer},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        return Response(account_export_body(account_data(request.user), now))
