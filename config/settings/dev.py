"""Local development: SQLite and a server-less Celery broker unless DATABASE_URL / REDIS_URL say otherwise."""
from config.settings.base import *  # noqa: F401,F403
from config.settings.base import (
    BASE_DIR,
    VAR_DIR,
    broker_from_env,
    caches_from_env,
    channel_layers_from_env,
    content_security_policy,
    database_from_env,
    env,
)

environ_file = BASE_DIR / ".env"
if environ_file.exists():
    env.read_env(str(environ_file))

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
# A fixed key for local data only; bin/run writes a random one into .env.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="sG6m0b9kV3p8S0l1lXb3x0oBv0sKq3rZ1xQe3aVw7nI=")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000")
# Against the local Twilio sandbox (bin/run --sandbox), the browser also talks to its Voice SDK signalling.
_sandbox_signalling = env.str("TWILIO_SANDBOX_SIGNALLING", default="")
if not env.str("TWILIO_API_BASE_URL", default=""):
    _sandbox_signalling = ""
CONTENT_SECURITY_POLICY = content_security_policy(PUBLIC_BASE_URL, _sandbox_signalling)

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": database_from_env(f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_env()
CACHES = caches_from_env()
CHANNEL_LAYERS = channel_layers_from_env()
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# A local install talks to local test servers; production refuses them (see base.py).
OUTBOUND_ALLOW_PRIVATE_TARGETS = env.bool("OUTBOUND_ALLOW_PRIVATE_TARGETS", default=True)
OUTBOUND_ALLOW_HTTP = env.bool("OUTBOUND_ALLOW_HTTP", default=True)
