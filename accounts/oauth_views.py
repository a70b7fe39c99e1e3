import hashlib

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as oauth2_views
from oauth2_provider.models import get_grant_model, get_refresh_token_model

Grant = get_grant_model()
RefreshToken = get_refresh_token_model()


class TokenView(oauth2_views.TokenView):
    """django-oauth-toolkit's token endpoint, with the exchanges of one authorization code,
    and the refreshes of one refresh token, taken one at a time.

    Unserialised, parallel requests with one code or one refresh token race inside DOT:
    two exchanges of a code both find the grant, and the slower one fails with a 500 when
    the faster deletes it; one refresh rotates the token while another's reuse protection
    revokes the family under it. Holding the grant's (or the token's) row lock for the
    whole request makes the first win cleanly and every later one a replay (400
    ``invalid_grant``, and the tokens it issued revoked).
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        grant_type = request.POST.get("grant_type")
        if grant_type == "authorization_code":
            rows = Grant.objects.filter(code=request.POST.get("code", ""))
        elif grant_type == "refresh_token":
            raw_token = request.POST.get("refresh_token", "")
            checksum = hashlib.sha256(raw_token.encode()).hexdigest()
            rows = RefreshToken.objects.filter(token_checksum=checksum)
        else:
            return super().post(request, *args, **kwargs)
        with transaction.atomic():
            list(rows.select_for_update())
            return super().post(request, *args, **kwargs)
