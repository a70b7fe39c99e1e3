import hashlib

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as oauth2_views
from oauth2_provider.models import get_refresh_token_model

RefreshToken = get_refresh_token_model()


class TokenView(oauth2_views.TokenView):
    """django-oauth-toolkit's token endpoint, with the refreshes of one refresh token taken
    one at a time.

    Unserialised, parallel refreshes of one token race inside DOT: one rotates the token,
    another's reuse protection revokes the family under the first, which then fails with
    a 500. Holding the token's row lock for the whole exchange makes the first refresh
    win cleanly and every later one a replay (400 ``invalid_grant``, family revoked).
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.POST.get("grant_type") != "refresh_token":
            return super().post(request, *args, **kwargs)
        raw_token = request.POST.get("refresh_token", "")
        checksum = hashlib.sha256(raw_token.encode()).hexdigest()
        with transaction.atomic():
            list(RefreshToken.objects.select_for_update().filter(token_checksum=checksum))
            return super().post(request, *args, **kwargs)
