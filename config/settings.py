"""Nodefleet settings, read from the environment (django-environ); see .env.example."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import quickstart

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# The quick start's own file (`make run` writes it: config/quickstart.py), read only while no
# DATABASE_URL names a database: production, CI and the tests always name theirs.
if quickstart.applies():
    environ.Env.read_env(quickstart.PATH, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Production must bring its own key; a throwaway one is only acceptable while DEBUG is on.
SECRET_KEY = env.str("SECRET_KEY", default="") or ("insecure-dev-only-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(quickstart.MISSING_SECRET_KEY)
# The quick start's demo login keeps this password across runs (manage.py demo_login).
DEMO_LOGIN_PASSWORD = env.str("DEMO_LOGIN_PASSWORD", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.NodefleetAdminConfig",  # django.contrib.admin, with the staff login of config/staff/admin_site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "hosts",
    "nodes",
    "tokens",
    "config.throttles",  # the throttles' shared counts (one table)
    # After nodes: nodes' `db_worker` (recovery, then the library's worker) overrides theirs.
    "django_tasks",
    "django_tasks_db",
]

# Sessions, the session's user and messages are Django's own, skipped for requests that carry
# an API token (config.http.middleware): they serve the admin, and cost an API client nothing.
MIDDLEWARE = [
    "config.http.logging.RequestIdMiddleware",
    "config.http.health.HealthCheckMiddleware",  # before anything that checks the Host header or CSRF
    "nodes.agent.poll.AgentPollMiddleware",  # an agent's plain poll, ahead of what it does not use
    "config.http.request_body.ChunkedBodyMiddleware",  # before anything reads the body
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.http.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.http.middleware.BrowserAuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "config.staff.sessions.StaffSessionMiddleware",
    "config.http.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.http.query_parameters.UnknownQueryParameterMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# How long a transaction waits for a row lock before the request answers 503 `busy`.
DB_LOCK_TIMEOUT_MS = env.int("DB_LOCK_TIMEOUT_MS", default=5000)

#: The hot statements prepared on each PostgreSQL connection (config.db.prepared).
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serves only the quick start: IMMEDIATE makes every write transaction take the
    # database's write lock up front, the nearest SQLite has to row locks. The server, the task
    # worker and the simulated agents write the one file at once: the WAL journal lets readers
    # go on beside a writer, and a writer waits (busy timeout, seconds) rather than failing with
    # "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"].setdefault("timeout", max(DB_LOCK_TIMEOUT_MS / 1000, 20))
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compilation costs more than it saves on this app's short queries (0.7 s measured on
    # an admin list at 1,000,000 nodes), so it is off for the app's connections.
    # `nodefleet.app=1` marks the connection as Nodefleet's from its start: the outside-write
    # triggers (hosts.outside, SPEC §13) record no write of a connection that carries it, at no
    # extra statement. Behind a pooler that drops startup options, set OUTSIDE_WRITES_APP_ROLE.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={DB_LOCK_TIMEOUT_MS} -c jit=off -c nodefleet.app=1"
    )
    # Prepared statements (issue 22, docs/performance.md "Connections"): psycopg prepares a
    # statement sent with server-side binding once a connection has run it DB_PREPARE_THRESHOLD
    # times, and PostgreSQL parses and plans it once per connection. The hot statements (the
    # upgrade's locked read and write, the agent's poll and calls, the token lookup) are sent so
    # (config.db.prepared); DB_SERVER_SIDE_BINDING sends every statement so (off: the ORM's and
    # the admin's SQL is written for client-side binding). Both off behind a pooler in
    # transaction mode that does not keep prepared statements.
    if env.bool("DB_SERVER_SIDE_BINDING", default=False):
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    if DB_PREPARED_STATEMENTS or DATABASES["default"]["OPTIONS"].get("server_side_binding"):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env.int("DB_PREPARE_THRESHOLD", default=5)
    # Django's connection pool (psycopg_pool) in place of one kept connection per thread: a
    # connection goes back to the pool at the end of each request (CONN_MAX_AGE must be 0).
    if env.bool("DB_POOL", default=False):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10),
        }
#: The database role Nodefleet connects as, whose writes the outside-write triggers never record
#: (§13; empty: only the startup mark above). `manage.py migrate` reinstalls the triggers when it changes.
OUTSIDE_WRITES_APP_ROLE = env.str("OUTSIDE_WRITES_APP_ROLE", default="")
DATABASES["default"]["CONN_MAX_AGE"] = 0 if env.bool("DB_POOL", default=False) else env.int("CONN_MAX_AGE", default=60)
# A kept connection is checked (`SELECT 1`, one round trip) at the first query of each request, so
# one that died (a database restart or failover) is replaced instead of failing the request.
# That is one statement of an API write's six (docs/performance.md); off, a dead connection
# fails one request per worker (503) and is then replaced.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)

# Background work (rollouts, §10): Django's tasks API on the database backend. A task is a row
# INSERTed in the transaction that makes it due; `manage.py db_worker` runs them.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
#: While a rollout runs, its advance is re-enqueued this often (timeouts noticed without agents).
ROLLOUT_TICK_SECONDS = env.int("ROLLOUT_TICK_SECONDS", default=10)
#: Every db_worker re-enqueues, this often, the advance of each rollout that needs ticks and has
#: none queued (nodes.rollouts.ticks.rollout_sweep): what a task that died before queuing its tick left.
ROLLOUT_SWEEP_SECONDS = env.int("ROLLOUT_SWEEP_SECONDS", default=30)
#: Adding an image newer than auto_upgrade nodes' version starts their rollout at once.
AUTO_UPGRADE_START = env.bool("AUTO_UPGRADE_START", default=False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Logins (docs/operations.md "Logins"; config/staff/login_lockout.py). django-axes counts failed
# logins in the database, so every gunicorn worker sees them. AXES_FAILURE_LIMIT failures of one
# username from one client address (REMOTE_ADDR, or NUM_PROXIES' entry) lock that pair out, and
# AXES_ADDRESS_FAILURE_LIMIT failures from one address (any usernames) the address, for
# AXES_COOLOFF_MINUTES (429 with a message). A username is never locked out from every address
# (anyone could lock out anyone): past AXES_FAILURE_LIMIT failures its attempts are slowed
# down, LOGIN_SLOWDOWN_SECONDS doubling per failure up to LOGIN_SLOWDOWN_MAX_SECONDS.
AUTHENTICATION_BACKENDS = [
    "config.staff.auth_backends.LockoutBackend",  # django-axes, then the slowdown
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "config.staff.login_lockout.LockoutHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
LOGIN_SLOWDOWN_SECONDS = env.float("LOGIN_SLOWDOWN_SECONDS", default=1.0)
LOGIN_SLOWDOWN_MAX_SECONDS = env.float("LOGIN_SLOWDOWN_MAX_SECONDS", default=8.0)
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failure, kept for the admin (Axes > Access failures)
AXES_LOCKOUT_TEMPLATE = "admin/nf_locked_out.html"
# The client address as the API sees it: NUM_PROXIES (below) says how many X-Forwarded-For
# entries to trust, so a client behind the proxy is locked out, not the proxy.
AXES_CLIENT_IP_CALLABLE = "config.throttles.failures.client_ip"
AXES_VERBOSE = False  # config.staff.logins logs every failure and lockout (with the request id)
# Time-based one-time passwords (django-otp): staff who enrolled a device give its code at
# login; with ADMIN_REQUIRE_2FA, a superuser without a verified device is refused the admin.
ADMIN_REQUIRE_2FA = env.bool("ADMIN_REQUIRE_2FA", default=False)
OTP_TOTP_ISSUER = "Nodefleet"
# The admin never shows a device's secret (its QR code and key pages answer 403): anyone who may
# view devices could copy them. `manage.py totp_enrol` prints them once, to the operator.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Sessions: 8 hours at most; staff sessions also end after STAFF_IDLE_TIMEOUT seconds without a
# request (config.staff.sessions.StaffSessionMiddleware).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
STAFF_IDLE_TIMEOUT = env.int("STAFF_IDLE_TIMEOUT", default=30 * 60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Admin pages with work in flight (a running rollout, a node its agent has yet to report on,
# open commands) refresh themselves this often, in seconds (hosts.admin.helpers.refresh_seconds).
ADMIN_REFRESH_SECONDS = env.int("ADMIN_REFRESH_SECONDS", default=5)
# One date format, with its zone, on every admin page (config/formats: `2026-12-01 18:50:20 UTC`).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the project's own: the favicon, the index page's style
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "config.http.static.StaticStorage"
    },
}
# Not collected (gunicorn started without `collectstatic`): whitenoise serves the apps' files
# and config.http.static.StaticStorage names them unhashed, with a warning at start.
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()

# Production hardening; all on unless DEBUG (override from the environment behind a proxy).
# X-Forwarded-Proto is believed only when a TLS-terminating proxy in front says so: a gunicorn
# reached directly would otherwise take any client's word that the request came over https.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe /healthz and Prometheus scrapes /metrics over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: the admin, the API docs (Swagger UI
# from drf-spectacular-sidecar, served from here) and the API. Nothing from another origin,
# no inline script; the docs page's one inline <style> carries the request's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],  # Swagger UI's and the admin's CSS draw icons from data: URLs
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],  # the admin's usage bars set their width inline
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Permissions-Policy (django-permissions-policy): no page here needs a device feature.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # plain | json
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.http.logging.RequestIdFilter"},
        "quiet_agent_polls": {"()": "config.http.logging.QuietAgentPolls"},
    },
    "formatters": {
        "plain": {
            "()": "config.http.logging.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {"()": "config.http.logging.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        },
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "loggers": {
        # Django's own loggers write through the root's handler alone: Django's default "console"
        # handler (under DEBUG) would print each 4xx's "Not Found: ..." a second time, bare.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # django-axes narrates each attempt at INFO; nodefleet.logins logs each outcome once.
        "axes": {"level": "WARNING"},
        # runserver's access log (make run): Django's own format, minus the simulated agents' idle polls.
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "filters": ["quiet_agent_polls"],
            "propagate": False,
        },
    },
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# The longest value a node's property may hold (characters); longer ones are refused (400 `invalid`).
NODE_PROPERTY_VALUE_MAX_LENGTH = env.int("NODE_PROPERTY_VALUE_MAX_LENGTH", default=1000)

# API writes per user (DRF rate: "600/min"; empty for no limit), counted in CACHES["default"].
API_WRITE_THROTTLE_RATE = env.str("API_WRITE_THROTTLE_RATE", default="600/min")
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Where the throttles (API writes, failed authentications) count (config.throttles.rates): in the database
# the app already has, so every worker and every app server shares each count; or, when
# CACHE_URL names a shared cache (Redis, memcached), there. Either way one atomic count per hit.
RATE_COUNTS = env.str("RATE_COUNTS", default="cache" if env.str("CACHE_URL", default="") else "database")
if RATE_COUNTS not in {"database", "cache"}:
    raise ImproperlyConfigured("RATE_COUNTS must be database or cache.")

# Host agents (SPEC §9), in seconds: a command `pending` longer than AGENT_ACK_TIMEOUT (since it
# was created, or since its retry_later's not_before) or `acked` longer than AGENT_RESULT_TIMEOUT
# is overdue (audit_resources warns, /metrics counts, the admin filters); a host whose agent was
# not seen for AGENT_OFFLINE_AFTER shows as offline.
AGENT_ACK_TIMEOUT = env.int("AGENT_ACK_TIMEOUT", default=600)
AGENT_RESULT_TIMEOUT = env.int("AGENT_RESULT_TIMEOUT", default=7200)
AGENT_OFFLINE_AFTER = env.int("AGENT_OFFLINE_AFTER", default=300)
# How often a polling agent's Host.agent_seen_at is written, at most (seconds).
AGENT_SEEN_INTERVAL = env.int("AGENT_SEEN_INTERVAL", default=60)

# /metrics: callers send `Authorization: Bearer <token>`. Without a token it is closed, except
# under DEBUG to loopback requests that no proxy forwarded (config.http.metrics).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# User API tokens (tokens app): seconds a new token lives (default 30 days; `manage.py api_token
# --no-expiry` makes one that never expires). Failed authentications per client address before
# 429 (DRF rate: "20/min"; empty: no limit), counted in CACHES["default"]. NUM_PROXIES: how many
# proxies in front append to X-Forwarded-For (0: the header is ignored; the address is the peer's).
API_TOKEN_TTL = env.int("API_TOKEN_TTL", default=30 * 24 * 3600)
if API_TOKEN_TTL <= 0:
    raise ImproperlyConfigured("API_TOKEN_TTL must be a positive number of seconds.")
API_AUTH_FAILURE_RATE = env.str("API_AUTH_FAILURE_RATE", default="20/min")
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# REST API (/api/v1/): token first (so a request without credentials gets 401), strict JSON,
# cursor pagination, every error as problem details (config.http.exceptions).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tokens.authentication.UserTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.http.api.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.http.api.ProblemAwareNegotiation",
    "DEFAULT_PAGINATION_CLASS": "config.http.api.StrictCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["nodes.api.throttles.WriteRateThrottle"],
    "DEFAULT_METADATA_CLASS": "config.http.api.DescriptiveMetadata",
    "EXCEPTION_HANDLER": "config.http.exceptions.problem_exception_handler",
    # ASCII-escaped JSON: text the API echoes back (an unknown key) can never fail to encode.
    "UNICODE_JSON": False,
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Nodefleet API",
    "DESCRIPTION": "Hosts, the nodes placed on them and their images. Errors are RFC 9457 problem details.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # A PATCH's body is its serializer as it validates (PATCH of a node requires auto_upgrade),
    # not a "Patched" copy with every field optional.
    "COMPONENT_SPLIT_PATCH": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets of the same field name in several components, named after their model.
    "ENUM_NAME_OVERRIDES": {
        "RolloutNodeStatusEnum": "nodes.rollouts.models.RolloutNodeStatus",
        "RolloutStateEnum": "nodes.rollouts.models.RolloutState",
        "CommandStatusEnum": "nodes.models.CommandStatus",
        "SchedulingEnum": "hosts.models.Scheduling",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.http.openapi.refuse_unknown_request_fields",
        "config.http.openapi.nullable_references",
    ],
}
