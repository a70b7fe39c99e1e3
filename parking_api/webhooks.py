"""Payment providers' webhooks: outside the driver API, signed by the provider instead of a
bearer token, answered fast (a job applies the event)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from parking_api.exceptions import error_response
from payments.providers import InvalidEvent
from payments.services import record_webhook


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        recorded = record_webhook(
            payload=request.body, headers=dict(request.headers), now=timezone.now()
        )
    except InvalidEvent:
        return error_response(400, "invalid_signature", "The Stripe-Signature does not verify.")
    # A replay (Stripe retries until it hears 2xx) is acknowledged and changes nothing.
    return JsonResponse({"received": True, "duplicate": not recorded})
