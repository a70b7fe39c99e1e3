import hashlib

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from oauth2_provider import views as oauth2_views
from oauth2_provider.models import get_grant_model, get_refresh_token_model
from oauthlib.oauth2.rfc6749 import errors as oauth_errors

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


# When the sign-in request itself is broken, nothing can be sent back to the app: the
# person in the browser tab reads why, in their language; the OAuth error stays beside it.
SIGN_IN_REFUSALS = {
    oauth_errors.MissingClientIdError: _("The app did not say which app it is."),
    oauth_errors.InvalidClientIdError: _("This app is not known to Secured Parking."),
    oauth_errors.MissingRedirectURIError: _(
        "The app did not say where to come back to after signing in."
    ),
    oauth_errors.InvalidRedirectURIError: _(
        "The address to come back to after signing in is not valid."
    ),
    oauth_errors.MismatchingRedirectURIError: _(
        "The address to come back to after signing in is not one this app registered."
    ),
}
SIGN_IN_REFUSED = _("This sign-in request is not valid.")


class AuthorizationView(oauth2_views.AuthorizationView):
    """django-oauth-toolkit's authorization endpoint; its error page
    (oauth2_provider/authorize.html) says what went wrong."""

    # DOT's authorization view itself takes `application` beyond its mixin's signature.
    def error_response(self, error, application, **kwargs):  # type: ignore[override]
        reason = SIGN_IN_REFUSALS.get(type(error.oauthlib_error), SIGN_IN_REFUSED)
        return super().error_response(error, application, reason=reason, **kwargs)
