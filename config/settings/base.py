"""Settings shared by every environment.

Values come from the environment (django-environ). `production.py` requires
them; `dev.py` and `test.py` supply local defaults.
"""
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "encrypted_model_fields",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "workspaces",
    "telephony",
    "dialer",
    "agents",
    "connectors",
    "calls",
    "webhooks",
    "analytics",
    "campaigns",
    "rest_framework",
    "drf_spectacular",
    "api",
    "knowledge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workspaces.middleware.CurrentWorkspaceMiddleware",
    "workspaces.middleware.TwoFactorMiddleware",
    "workspaces.middleware.AuditContextMiddleware",
    # Last: turns a locked-out login attempt into the lockout page (docs/security.md).
    "axes.middleware.AxesMiddleware",
    "csp.middleware.CSPMiddleware",
]


def content_security_policy(public_base_url: str, sandbox_signalling: str = "") -> dict:
    """The Content-Security-Policy (django-csp 4): scripts, styles, fonts and images from our own static files
    only (no inline script or style anywhere, no eval); fetch/XHR and websockets to ourselves (the live-call
    and test-chat sockets, also by PUBLIC_BASE_URL's host) and to Twilio's Voice SDK signalling and event
    gateways (wss/https *.twilio.com); audio from our recording proxies and the SDK's ringtones
    (sdk.twilio.com). The browser's WebRTC media is not governed by CSP. See docs/security.md."""
    from urllib.parse import urlsplit

    from csp.constants import NONE, SELF

    host = urlsplit(public_base_url).netloc
    sockets = [f"wss://{host}"] + ([f"ws://{host}"] if public_base_url.startswith("http://") else [])
    if sandbox_signalling:  # dev against the local Twilio sandbox: its Voice SDK signalling (never in production)
        sockets.append(f"wss://{sandbox_signalling}")
    return {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF],
            "style-src": [SELF],
            "img-src": [SELF, "data:"],
            "font-src": [SELF],
            "connect-src": [SELF, *sockets, "wss://*.twilio.com", "https://*.twilio.com"],
            "media-src": [SELF, "https://sdk.twilio.com"],
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
        },
    }


# Login throttling (django-axes): failed logins are counted in the database (so a lockout survives a restart);
# what is locked is below (AXES_HANDLER), for AXES_COOLOFF_TIME (or until an admin deletes the access attempt).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Two-factor sign-in (django-otp): TOTP (an authenticator app) plus single-use recovery codes. Workspaces may
# require it for every member (Workspace.require_two_factor); staff need it for /admin/ when this is on
# (on in production.py).
OTP_REQUIRED_FOR_STAFF = env.bool("OTP_REQUIRED_FOR_STAFF", default=False)
OTP_TOTP_ISSUER = "Callwell"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # Django admin never shows a TOTP key or a recovery code (workspaces/admin.py)

# The account guessed at is locked, not the office it is guessed from (workspaces/throttling.py): a username
# after AXES_FAILURE_LIMIT failures; an address only after failures for AXES_ADDRESS_USERNAME_LIMIT different
# usernames; a login refused by a lock (even with the right password) is not counted.
AXES_HANDLER = "workspaces.throttling.LoginThrottleHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_ADDRESS_USERNAME_LIMIT = env.int("AXES_ADDRESS_USERNAME_LIMIT", default=20)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "workspaces.throttling.lockout_response"
# axes.W006 asks for "ip_address" among the lockout parameters; the address is locked by our handler instead,
# on failures for many different usernames (rotating user agents or cookies does not bypass either lock).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Twilio webhooks that arrive while PostgreSQL is down are noted here (a local folder of each web server) and
# recorded as telephony.MissedCall once the database is back (telephony/spool.py).
OUTAGE_SPOOL_DIR = env.str("OUTAGE_SPOOL_DIR", default=str(VAR_DIR / "outage-spool"))
OUTAGE_SPOOL_MAX_BYTES = env.int("OUTAGE_SPOOL_MAX_BYTES", default=10_000_000)
AXES_VERBOSE = False
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=60))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client IP is REMOTE_ADDR (django-ipware is not installed): behind a proxy, have the ASGI server take
# the client address from the proxy's header (uvicorn/daphne --proxy-headers), never from the client.

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "workspaces.context_processors.workspace",
                "telephony.context_processors.phone_system",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions are read from the cache (Redis in production) and written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages installed from npm (package.json), served by us: no CDN.
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/twilio-voice", BASE_DIR / "node_modules" / "@twilio" / "voice-sdk" / "dist"),
]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database_from_env(default: str) -> dict:
    db = env.db("DATABASE_URL", default=default)
    db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    db["CONN_HEALTH_CHECKS"] = True
    if db["ENGINE"].endswith("sqlite3"):
        # Web and worker processes share one SQLite file: wait for locks
        # instead of failing with "database is locked".
        db.setdefault("OPTIONS", {})["timeout"] = 20
        db["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
        db["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    return db


def postgres_pool_from_env(db: dict) -> dict:
    """A bounded psycopg connection pool per process for PostgreSQL (issue 22.4), sized by DB_POOL_MIN_SIZE /
    DB_POOL_MAX_SIZE / DB_POOL_TIMEOUT (README). Under ASGI every request runs its sync code on a thread of its
    own, so per-thread persistent connections (CONN_MAX_AGE) grow without bound; the pool caps them at
    DB_POOL_MAX_SIZE per process and makes a request wait (at most DB_POOL_TIMEOUT seconds) for a free one.
    DB_POOL_MAX_SIZE=0 turns the pool off (e.g. behind PgBouncer), leaving DB_CONN_MAX_AGE in charge."""
    if not db["ENGINE"].endswith("postgresql"):
        return db
    max_size = env.int("DB_POOL_MAX_SIZE", default=10)
    if max_size <= 0:
        return db
    db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DB_POOL_MIN_SIZE", default=2), max_size),
        "max_size": max_size,
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    db["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both at once
    return db


def broker_from_env() -> tuple[str, dict]:
    """Redis when REDIS_URL is set, else kombu's filesystem transport (no server)."""
    redis_url = env.str("REDIS_URL", default="")
    if redis_url:
        return redis_url, {"visibility_timeout": 3600}
    folder = Path(env.str("CELERY_FS_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for sub in ("out", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder / "out"),
        "data_folder_out": str(folder / "out"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


def caches_from_env() -> dict:
    redis_url = env.str("REDIS_URL", default="")
    if redis_url:
        # Django's RedisCache with one client per pool (config/cache.py: the stock one rebuilds it per operation).
        return {"default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": redis_url}}
    # Shared by the web server and the worker processes.
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(Path(env.str("CACHE_DIR", default=str(VAR_DIR / "cache")))),
        }
    }


# channels_redis waits up to 5 s in BZPOPMIN for a message; redis-py's default socket timeout is 5 s too, so an idle
# receive (a live call's control loop, a live-calls socket) died with "Timeout reading from …". Reads may block
# longer than the layer's wait; connecting stays bounded.
CHANNEL_LAYER_SOCKET_TIMEOUT = 30.0


def channel_layers_from_env() -> dict:
    redis_url = env.str("REDIS_URL", default="")
    if redis_url:
        host = {"address": redis_url, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT, "socket_connect_timeout": 5.0,
                "socket_keepalive": True, "health_check_interval": 15}
        return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [host]}}}
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (JSON, secrets redacted), not Celery's own plain-text handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "workspaces.tasks.worker_heartbeat",
        "schedule": 60.0,
    },
    "revalidate-twilio-connections": {
        "task": "telephony.tasks.revalidate_all_connections",
        "schedule": 15 * 60.0,
    },
    "check-connector-numbers": {
        "task": "connectors.tasks.connector_numbers_check_all",
        "schedule": 30 * 60.0,
    },
    "purge-expired-recordings": {
        "task": "calls.tasks.recordings_purge_expired",
        "schedule": 60 * 60.0,
    },
    "sweep-webhook-events": {
        "task": "webhooks.tasks.webhooks_sweep",
        "schedule": 60.0,
    },
    "refresh-knowledge-pages": {
        "task": "knowledge.tasks.sources_refresh_due",
        "schedule": 10 * 60.0,
    },
    "campaigns-tick": {
        "task": "campaigns.tasks.campaigns_tick",
        "schedule": 5.0,
    },
}
# New calls per second a workspace's campaigns may start (Twilio's default CPS for an account is 1).
CAMPAIGNS_CALLS_PER_SECOND = env.int("CAMPAIGNS_CALLS_PER_SECOND", default=1)

# Twilio. TWILIO_API_BASE_URL empty means the real Twilio; otherwise every REST
# call goes to that server (the sandbox, or Prism for contract tests).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
# The sandbox's Voice SDK signalling (host:port, the Device's `chunderw`); used only with TWILIO_API_BASE_URL.
TWILIO_SANDBOX_SIGNALLING = env.str("TWILIO_SANDBOX_SIGNALLING", default="")
TWILIO_CONNECT_TIMEOUT = env.float("TWILIO_CONNECT_TIMEOUT", default=3.05)
TWILIO_READ_TIMEOUT = env.float("TWILIO_READ_TIMEOUT", default=10.0)
# Hosted mode: the platform's parent account, which owns the workspaces' sub-accounts.
TWILIO_PARENT_ACCOUNT_SID = env.str("TWILIO_PARENT_ACCOUNT_SID", default="")
TWILIO_PARENT_AUTH_TOKEN = env.str("TWILIO_PARENT_AUTH_TOKEN", default="")
# Trust X-Forwarded-Proto/Host only when a proxy we run sets them.
TWILIO_TRUST_PROXY_HEADERS = env.bool("TWILIO_TRUST_PROXY_HEADERS", default=False)

VOICE_TOKEN_TTL = 3600
# Voice tokens per user per minute (a browser needs about one per page load; benchmarks raise it).
VOICE_TOKEN_RATE_LIMIT = (env.int("VOICE_TOKEN_RATE_LIMIT", default=30), 60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replace Django's own handlers (plain-text console, mail_admins) with ours.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "twilio.http_client": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}

# Requests we send to URLs a user typed (agent actions, event webhooks, vendor base URLs) go through
# workspaces.outbound: loopback, private, link-local, multicast, unspecified and metadata addresses are
# refused unless this is on (on for local development and tests, off in production), and https is
# required unless OUTBOUND_ALLOW_HTTP is on.
OUTBOUND_ALLOW_PRIVATE_TARGETS = env.bool("OUTBOUND_ALLOW_PRIVATE_TARGETS", default=False)
OUTBOUND_ALLOW_HTTP = env.bool("OUTBOUND_ALLOW_HTTP", default=False)
# Post-call analysis vendor when the environment has no ANALYSIS_PROVIDER variable: "openai" or "anthropic".
ANALYSIS_PROVIDER = env.str("ANALYSIS_PROVIDER", default="openai")


# The public API (api/): Django REST Framework, keys per workspace, problem JSON errors, per-key rate limits
# (DRF throttling on the cache), the OpenAPI schema by drf-spectacular. See docs/api.md.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE_PER_KEY", default="600/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Callwell API",
    "DESCRIPTION": "Place agent calls and read their outcome. Authenticate with a workspace API key: "
                   "`Authorization: Bearer <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
# Knowledge bases (docs/knowledge.md): the largest file accepted, the most text kept per source, the largest web
# page fetched, and the fetch timeout.
KNOWLEDGE_MAX_FILE_BYTES = env.int("KNOWLEDGE_MAX_FILE_BYTES", default=10 * 1024 * 1024)
# A version's voicemail recording (agents.voicemail): MP3 or WAV, played with <Play> after the beep.
VOICEMAIL_MAX_BYTES = env.int("VOICEMAIL_MAX_BYTES", default=5 * 1024 * 1024)
KNOWLEDGE_MAX_SOURCE_CHARS = env.int("KNOWLEDGE_MAX_SOURCE_CHARS", default=1_000_000)
KNOWLEDGE_MAX_PAGE_BYTES = env.int("KNOWLEDGE_MAX_PAGE_BYTES", default=5 * 1024 * 1024)
KNOWLEDGE_FETCH_TIMEOUT = env.float("KNOWLEDGE_FETCH_TIMEOUT", default=15.0)
