from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView
from oauth2_provider import views as oauth2_views

from accounts.forms import EmailAuthenticationForm
from accounts.oauth_views import AuthorizationView, TokenView
from parking.admin import dashboard_view
from parking.admin_revenue import revenue_export_view
from parking_api import health, webhooks
from parking_api.admin_views import view_on_site
from parking_api.api_docs import ApiDocsOAuthRedirectView, ApiDocsView

# Only the endpoints the mobile app and resource servers need; DOT's client
# registration pages stay off (clients are managed in the admin).
oauth2_urlpatterns = (
    [
        path("authorize/", AuthorizationView.as_view(), name="authorize"),
        path("token/", TokenView.as_view(), name="token"),
        path("revoke_token/", oauth2_views.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect/", oauth2_views.IntrospectTokenView.as_view(), name="introspect"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    # First: Django tries the patterns in order, and the app's requests are most of them.
    path("api/car_driver/", include("parking.urls")),
    path("api/car_driver/", include("accounts.urls")),
    path("api/car_driver/", include("payments.urls")),
    # Before admin.site.urls, whose catch-all would answer 404; admin_view asks for staff.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/revenue/", admin.site.admin_view(revenue_export_view), name="admin-revenue"),
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="admin-view-on-site",
    ),
    path("admin/", admin.site.urls),
    path("o/", include(oauth2_urlpatterns)),
    path(
        ".well-known/oauth-authorization-server",
        oauth2_views.OAuthServerMetadataView.as_view(),
        name="oauth-authorization-server",
    ),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # set_language: the admin header's language choice (templates/admin/base_site.html).
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "accounts/signed-in/",
        login_required(TemplateView.as_view(template_name="registration/signed_in.html")),
        name="signed-in",
    ),
    path("webhooks/stripe", webhooks.stripe_webhook, name="stripe-webhook"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/docs/oauth2-redirect.html",
        ApiDocsOAuthRedirectView.as_view(),
        name="swagger-ui-oauth2-redirect",
    ),
]

handler400 = "parking_api.exceptions.bad_request"
handler403 = "parking_api.exceptions.permission_denied"
handler404 = "parking_api.exceptions.not_found"
handler500 = "parking_api.exceptions.server_error"
