"""Production: every value comes from the environment; the required ones have no default."""
from urllib.parse import urlsplit

from config.settings.base import *  # noqa: F401,F403
from config.settings.base import (
    MIDDLEWARE,
    broker_from_env,
    caches_from_env,
    channel_layers_from_env,
    content_security_policy,
    env,
    postgres_pool_from_env,
)

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
# A comma-separated list rotates keys: the new key first (encrypts), old keys after it (still decrypt).
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL")
CONTENT_SECURITY_POLICY = content_security_policy(PUBLIC_BASE_URL)
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"] = postgres_pool_from_env(DATABASES["default"])
REDIS_URL = env.str("REDIS_URL")
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_env()
CACHES = caches_from_env()
CHANNEL_LAYERS = channel_layers_from_env()

_public = urlsplit(PUBLIC_BASE_URL)
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Django admin staff must sign in with a second factor (docs/security.md).
OTP_REQUIRED_FOR_STAFF = env.bool("OTP_REQUIRED_FOR_STAFF", default=True)

# Static files are served by the app itself (WhiteNoise), compressed, after `manage.py collectstatic`.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
