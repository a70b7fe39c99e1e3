from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from parking.selectors import current_session_for
from parking.serializers import ParkingSessionBodySerializer


class CurrentParkingSessionView(APIView):
    """The driver's open parking session; the app asks for it on every launch."""

    def get(self, request: Request) -> Response:
        session = current_session_for(request.user)
        if session is None:
            raise NotFound("You have no open parking session.")
        return Response(ParkingSessionBodySerializer(session).data)
