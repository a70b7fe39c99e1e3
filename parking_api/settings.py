"""Settings for the secured-parking backend, read from the environment.

Every knob is an environment variable (see README, "Configuration"). With nothing
set the project runs as a local demo on SQLite; production sets DATABASE_URL,
DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS and leaves DJANGO_DEBUG off.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105 - only reachable with DEBUG on

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "oauth2_provider",
    "accounts",
    "parking",
    "payments",
    "smart_keys",
]

MIDDLEWARE = [
    "parking_api.middleware.RequestIdAndLogMiddleware",
    # Early, so that the refusals of the middleware below speak the caller's language too.
    "parking_api.middleware.LanguageMiddleware",
    "parking_api.middleware.AllowedHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Inside SecurityMiddleware: its opener policy must not cut off the docs' sign-in popup.
    "parking_api.api_docs.ApiDocsPopupMiddleware",
    "parking_api.middleware.NoStoreMiddleware",
    "parking_api.middleware.JsonErrorsMiddleware",
    "parking_api.middleware.BodySizeLimitMiddleware",
    "parking_api.middleware.NulParameterMiddleware",
    # Django's own, except under /api/ (bearer tokens only): see the module.
    "parking_api.browser_middleware.BrowserWhiteNoiseMiddleware",
    "parking_api.browser_middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "parking_api.browser_middleware.BrowserAuthenticationMiddleware",
    "parking_api.browser_middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "parking_api.middleware.SignInThrottleMiddleware",
]

ROOT_URLCONF = "parking_api.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "parking_api.wsgi.application"

# SQLite is only the zero-setup default for a local demo; CI and production use PostgreSQL.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
# Each worker keeps its connection for life, health-checked before every request and replaced
# when the server has dropped it: a reconnect starts a cold PostgreSQL backend, on which
# psycopg prepares the API's reads again, on every worker at once. DATABASE_CONN_MAX_AGE
# (seconds; 0: a connection per request) bounds it.
_conn_max_age = env.str("DATABASE_CONN_MAX_AGE", default="")
if _conn_max_age and not _conn_max_age.isdigit():
    raise ImproperlyConfigured("DATABASE_CONN_MAX_AGE must be a whole number of seconds.")
DATABASES["default"]["CONN_MAX_AGE"] = int(_conn_max_age) if _conn_max_age else None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a health check that costs no round trip (see the module).
    DATABASES["default"]["ENGINE"] = "parking_api.postgresql"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # An unreachable database must fail fast (the API answers 503), not hang a worker.
    _options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2))
    # psycopg 3 sends parameters apart from the SQL and, once a statement has run
    # prepare_threshold times on a connection, prepares it there: the reads every API request
    # makes are then planned once per connection. Django leaves preparing off unless asked;
    # DATABASE_PREPARED_STATEMENTS=0 keeps it off (None), for poolers that share server
    # connections between clients (PgBouncer in transaction mode).
    _options.setdefault("server_side_binding", True)
    _options.setdefault(
        "prepare_threshold",
        5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None,
    )

# Background jobs (README, "Background jobs"): Procrastinate keeps its queue in PostgreSQL, so
# a job is deferred in the transaction of the change that needs it. Its schema is PostgreSQL's
# own: on the SQLite demo there is no queue and core.jobs.defer runs a job after the commit.
if DATABASES["default"]["ENGINE"] == "parking_api.postgresql":
    INSTALLED_APPS.append("procrastinate.contrib.django")
# Apps' tasks are in their tasks.py (found by Procrastinate); the engine's own are in core.jobs.
PROCRASTINATE_IMPORT_PATHS = ["core.jobs"]
# A worker writes a heartbeat this often; one silent for JOBS_STALLED_AFTER_SECONDS is taken
# as dead, and its jobs are run again by core.jobs.retry_stalled_jobs.
JOBS_STALLED_AFTER = timedelta(seconds=env.float("JOBS_STALLED_AFTER_SECONDS", default=30.0))
PROCRASTINATE_WORKER_DEFAULTS = {
    "update_heartbeat_interval": env.float("JOBS_HEARTBEAT_SECONDS", default=10.0),
    "stalled_worker_timeout": JOBS_STALLED_AFTER.total_seconds(),
}

# Throttle counters must be shared by every worker: Redis when REDIS_URL is set.
REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
# Drivers sign in from the app through /o/authorize/; opened directly, the page ends here.
LOGIN_REDIRECT_URL = "signed-in"

# Romanian and English (README, "Languages"): Accept-Language picks one for API messages,
# the sign-in page and the admin (where an operator's choice, a cookie, comes first); a
# request that names neither gets LANGUAGE_CODE. Catalogs are in locale/.
LANGUAGES = [("ro", "Română"), ("en", "English")]
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="ro")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(
        f"DJANGO_LANGUAGE_CODE must be one of {', '.join(dict(LANGUAGES))}, not {LANGUAGE_CODE!r}."
    )
LOCALE_PATHS = [BASE_DIR / "locale"]
# An operator's choice in the admin header (django.views.i18n.set_language), kept for a year.
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

REST_FRAMEWORK = {
    # Bearer tokens only: the app never holds a Django session, so no CSRF either.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["parking_api.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.ParkingAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.DriverRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "driver": env.str("API_THROTTLE_DRIVER_RATE", default="600/min"),
        "sign_in": env.str("API_THROTTLE_SIGN_IN_RATE", default="10/min"),
        "sign_in_account": env.str("API_THROTTLE_SIGN_IN_ACCOUNT_RATE", default="10/min"),
    },
    # Proxies in front of the app that append to X-Forwarded-For (0: clients connect directly).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PagePagination",
    "PAGE_SIZE": 20,
}

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", default=15 * 60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.int(
        "OAUTH_REFRESH_TOKEN_EXPIRE_SECONDS", default=30 * 24 * 3600
    ),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    # An empty client secret never authenticates a client (see the class).
    "OAUTH2_VALIDATOR_CLASS": "accounts.oauth2_validators.ParkingOAuth2Validator",
    "SCOPES": {"driver": "Use the car driver API"},
    "DEFAULT_SCOPES": ["driver"],
    # RFC 8414 metadata says what the server takes: the code flow and refreshes, public
    # clients (the mobile app: no secret) and confidential ones (resource servers).
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ],
    # The mobile app's redirect URI uses its own custom scheme (RFC 8252 §7.1); local
    # development serves the API docs, whose sign-in comes back to them, over http.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "parkingapp", *(["http"] if DEBUG else [])],
    # RFC 9700 (OAuth 2.0 Security BCP): no password or implicit grant, S256 PKCE only,
    # bearer tokens only in the Authorization header, tokens hashed at rest.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    # RFC 9207: the callback carries `iss`, so the app can detect authorization mix-ups.
    # It names this server's root, the issuer of the RFC 8414 metadata served at
    # /.well-known/oauth-authorization-server (outside DOT's URL namespace on purpose: in
    # it, DOT would derive the issuer as .../o).
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "parking_api.exceptions.ApiExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "parking_api.exceptions.ApiExceptionFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}

# Swagger UI at /api/docs/ signs in with authorization code + PKCE as this public client,
# which seed_demo registers (an operator registers it in the admin elsewhere); off in
# production unless asked for.
API_DOCS_SIGN_IN = env.bool("API_DOCS_SIGN_IN", default=DEBUG)
API_DOCS_CLIENT_ID = "parking-api-docs"

# Bigger bodies are refused with 413 before any parsing; the API's own bodies are tiny.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "Secured Parking API",
    "DESCRIPTION": (
        "The car driver API of the secured-parking service. Sign in with OAuth 2 "
        "(authorization code + PKCE S256) and send `Authorization: Bearer <token>`.\n\n"
        'Every error answers `{"type", "errors": [{"code", "detail", "attr"}]}` '
        "(`Error<status>`); `code` is stable for clients to branch on, and each operation's "
        "`x-error-codes` lists the codes it can answer, by status."
    ),
    "VERSION": "1.0.0",
    # 3.1: nullable values are type arrays and `oneOf` with null, which JSON Schema
    # validators accept on live answers (3.0's `nullable` beside `allOf` they do not).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/car_driver",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two fields called ``state`` (a session's, a payment's): each enum keeps its own name.
    "ENUM_NAME_OVERRIDES": {
        "StateEnum": "parking.models.State",
        "PaymentStateEnum": "payments.models.PaymentState",
        "PaymentEventKindEnum": "payments.models.PaymentEventKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "parking_api.openapi.add_error_components",
    ],
    "OAUTH2_FLOWS": ["authorizationCode"],
    "OAUTH2_AUTHORIZATION_URL": "/o/authorize/",
    "OAUTH2_TOKEN_URL": "/o/token/",
    "OAUTH2_REFRESH_URL": "/o/token/",
    "OAUTH2_SCOPES": {"driver": "Use the car driver API"},
}

# HTTPS: production sets DJANGO_HTTPS=1 (and DJANGO_BEHIND_TLS_PROXY=1 when a proxy
# terminates TLS and sends X-Forwarded-Proto); local HTTP and the test suite leave it off.
HTTPS_ONLY = env.bool("DJANGO_HTTPS", default=False)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS_ONLY)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HTTPS_ONLY)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=HTTPS_ONLY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Health checks come over plain HTTP from the load balancer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Parking sessions and smart keys.
PARKING_ENTERING_TIMEOUT = timedelta(
    seconds=env.int("PARKING_ENTERING_TIMEOUT_SECONDS", default=15 * 60)
)
SMART_KEY_VALIDITY = timedelta(seconds=env.int("SMART_KEY_VALIDITY_SECONDS", default=15 * 60))
IDEMPOTENCY_KEY_RETENTION = timedelta(hours=env.int("IDEMPOTENCY_KEY_RETENTION_HOURS", default=24))
# Prices include VAT at this rate: Romania's standard rate, 21% since 1 August 2025 (Law
# 141/2025). Receipts show it.
PARKING_VAT_RATE = Decimal(env.str("PARKING_VAT_RATE", default="0.21"))
# Closed sessions and access-log rows older than this are anonymised by the daily job
# parking.anonymise_old_personal_data (README, "Account rights and personal data").
PERSONAL_DATA_RETENTION = timedelta(days=env.int("PERSONAL_DATA_RETENTION_DAYS", default=3 * 365))
# What must hold before an account is deleted; each raises accounts.services.AccountDeletionRefused
# (an app that can owe money or hold a car adds its check here).
ACCOUNT_DELETION_CHECKS = [
    "accounts.services.refuse_back_office_accounts",
    "parking.services.accounts.refuse_while_a_session_is_open",
    "parking.services.accounts.refuse_while_money_is_owed",
]

# Signed access commands (docs/access-command.md) and online barriers (docs/barrier-gateway.md).
ACCESS_COMMAND_VALIDITY = timedelta(
    seconds=env.int("ACCESS_COMMAND_VALIDITY_SECONDS", default=2 * 60)
)
# A routine rotation publishes the next key this long before it starts signing, for
# barriers to be re-provisioned with it in the meantime.
ACCESS_COMMAND_KEY_ROTATION_DELAY = timedelta(
    seconds=env.int("ACCESS_COMMAND_KEY_ROTATION_DELAY_SECONDS", default=7 * 24 * 60 * 60)
)
# After a switch, commands signed with the previous key still verify this long.
ACCESS_COMMAND_KEY_OVERLAP = timedelta(
    seconds=env.int("ACCESS_COMMAND_KEY_OVERLAP_SECONDS", default=10 * 60)
)
# Encrypts the parkings' private keys at rest; comma-separated to rotate (first encrypts).
# Unset, a key derived from SECRET_KEY is used: then changing SECRET_KEY needs a key rotation.
ACCESS_COMMAND_KEY_ENCRYPTION_KEY = env.list("ACCESS_COMMAND_KEY_ENCRYPTION_KEY", default=[])
BARRIER_GATEWAY_CONNECT_TIMEOUT = env.float("BARRIER_GATEWAY_CONNECT_TIMEOUT_SECONDS", default=2.0)
BARRIER_GATEWAY_READ_TIMEOUT = env.float("BARRIER_GATEWAY_READ_TIMEOUT_SECONDS", default=5.0)
BARRIER_GATEWAY_ATTEMPTS = env.int("BARRIER_GATEWAY_ATTEMPTS", default=2)
# Gateways are https on public addresses (smart_keys.gateway_urls); tests and local
# development (DJANGO_DEBUG on) run theirs on loopback over http.
BARRIER_GATEWAY_ALLOW_HTTP = env.bool("BARRIER_GATEWAY_ALLOW_HTTP", default=DEBUG)
BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS = env.bool(
    "BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS", default=DEBUG
)

# What barriers report through the phones (docs/passage-record.md).
# After a barrier's key is replaced, records its old key signed before are taken this long.
BARRIER_KEY_OVERLAP = timedelta(
    seconds=env.int("BARRIER_KEY_OVERLAP_SECONDS", default=7 * 24 * 60 * 60)
)
# Records one upload may carry (each about 140 characters; the body cap is 16 KiB).
PASSAGE_UPLOAD_MAX_RECORDS = env.int("PASSAGE_UPLOAD_MAX_RECORDS", default=50)
# The command of `exit` stays valid this long, so the driver walks to the car and leaves
# without a network; tries' commands keep ACCESS_COMMAND_VALIDITY.
OFFLINE_EXIT_COMMAND_VALIDITY = timedelta(
    seconds=env.int("OFFLINE_EXIT_COMMAND_VALIDITY_SECONDS", default=20 * 60)
)
# A barrier's clock offset is estimated from the records received in this window; beyond
# the tolerance the barrier shows as drifting in the admin.
BARRIER_CLOCK_WINDOW = timedelta(seconds=env.int("BARRIER_CLOCK_WINDOW_SECONDS", default=60 * 60))
BARRIER_CLOCK_TOLERANCE = timedelta(seconds=env.int("BARRIER_CLOCK_TOLERANCE_SECONDS", default=60))
# A time statement claims the backend's time is within this of its issue when it reaches
# the barrier; a barrier corrects its clock to that tolerance.
TIME_STATEMENT_VALIDITY = timedelta(
    seconds=env.int("TIME_STATEMENT_VALIDITY_SECONDS", default=2 * 60)
)

# Payments (README, "Payments"): the provider behind payments.providers, Stripe by default.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="payments.providers.stripe.StripeProvider")
# Secret key; empty answers every payment with 503. Tests and `make run` use localstripe
# (STRIPE_API_BASE on loopback), which takes any sk_test_ key.
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="sk_test_localstripe" if DEBUG else "")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="pk_test_localstripe")
# Empty for Stripe itself; a localstripe URL in tests and local development.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# Verifies the Stripe-Signature of webhooks (POST /webhooks/stripe); empty refuses them all.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# A start waits at most this for Stripe, then answers 503 (payment_provider_unavailable).
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=4.0)
# A parking's hold, unless it sets its own: its daily cap or, without one, this many periods.
PAYMENT_HOLD_PERIODS = env.int("PAYMENT_HOLD_PERIODS", default=24)
# Card holds last about 7 days at Stripe: renewed well before.
PAYMENT_HOLD_RENEW_AFTER = timedelta(
    hours=env.int("PAYMENT_HOLD_RENEW_AFTER_HOURS", default=6 * 24)
)
# A hold with no session this long after it was placed was left by a failed start.
PAYMENT_ORPHAN_HOLD_AFTER = timedelta(minutes=10)
# Captures and releases whose jobs gave up are deferred again after this long.
PAYMENT_RETRY_STUCK_AFTER = timedelta(minutes=10)

# One JSON object per line on stderr: request lines (parking_api.requests) carry the
# request id, method, path, status, duration and driver id, never headers or bodies.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Every 4xx is already in the request line; Django's own warning for it would log
        # each 401/404 twice. Server errors (with their traceback) still come through.
        "django.request": {"level": "ERROR"},
        # Every process (web ones too) would log each task and schedule it registers; the
        # worker's job lines (procrastinate.worker) stay.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.periodic": {"level": "WARNING"},
        # The SDK logs every request and response at INFO.
        "stripe": {"level": "WARNING"},
    },
}
