from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import DUPLICATE_EMAIL_MESSAGE, DriverSerializer, DriverSignUpSerializer
from accounts.services import EmailAlreadyRegistered, register_driver
from core.throttling import ClientIPRateThrottle


class AccountSignUpView(APIView):
    """A driver signs up with email and password, then signs in through OAuth."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Per client IP, like the login form: sign-up is where accounts get mass-created.
    throttle_classes = [ClientIPRateThrottle]

    @extend_schema(
        operation_id="signUp",
        summary="Sign up as a driver",
        description="Creates a driver account; then sign in through OAuth "
        "(`/o/authorize/`). The password must pass Django's validators; an email already "
        "registered answers 400 on `email`. Limited per client IP.",
        request=DriverSignUpSerializer,
        responses={201: OpenApiResponse(DriverSerializer, description="The new account.")},
    )
    def post(self, request: Request) -> Response:
        serializer = DriverSignUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            driver = register_driver(**serializer.validated_data)
        except EmailAlreadyRegistered as error:
            raise ValidationError({"email": [DUPLICATE_EMAIL_MESSAGE]}) from error
        return Response(DriverSerializer(driver).data, status=status.HTTP_201_CREATED)
