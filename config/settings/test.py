"""Tests: SQLite file (shared with worker processes the tests start) unless DATABASE_URL is set."""
import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F401,F403
from config.settings.base import (
    broker_from_env,
    channel_layers_from_env,
    content_security_policy,
    database_from_env,
    env,
)

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FIELD_ENCRYPTION_KEY = "8Jqj3WvY7e1bXkqG0m6rQ2l9fH5aT4sVzN0cD1eF2gI="
ALLOWED_HOSTS = ["*"]
PUBLIC_BASE_URL = "https://calls.example.test"
CONTENT_SECURITY_POLICY = content_security_policy(PUBLIC_BASE_URL)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("CALLWELL_TEST_RUN_DIR"):
    _run_dir = Path(os.environ["CALLWELL_TEST_RUN_DIR"])  # chosen by bin/test, or inherited by a worker a test started
else:
    _run_dir = Path(tempfile.mkdtemp(prefix="callwell-test-"))
    os.environ["CALLWELL_TEST_RUN_DIR"] = str(_run_dir)
    atexit.register(shutil.rmtree, _run_dir, ignore_errors=True)  # this process made it: remove it at exit
os.environ.setdefault("CELERY_FS_BROKER_DIR", str(_run_dir / "broker"))

DATABASES = {"default": database_from_env(f"sqlite:///{_run_dir / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so a Celery worker process started by a test sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(_run_dir / "test-db.sqlite3")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
OUTAGE_SPOOL_DIR = str(_run_dir / "outage-spool")

CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_env()
# One queue per test run (the worker a test starts inherits CALLWELL_TEST_RUN_DIR), so a
# shared Redis never hands this run's worker a stale message of an earlier run.
CELERY_TASK_DEFAULT_QUEUE = env.str(
    "CELERY_TASK_DEFAULT_QUEUE", default="test-" + hashlib.sha1(str(_run_dir).encode()).hexdigest()[:12]
)
# Unit tests run tasks in-process; tests marked `worker` switch this off and start a real worker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env.str("REDIS_URL", default=""):
    CACHES = {"default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": env.str("REDIS_URL"), "KEY_PREFIX": "test"}}
CHANNEL_LAYERS = channel_layers_from_env()
TWILIO_CONNECT_TIMEOUT = 1.0
TWILIO_READ_TIMEOUT = 2.0

# Tests talk to loopback servers; tests of the guard itself turn this off with override_settings.
OUTBOUND_ALLOW_PRIVATE_TARGETS = True
OUTBOUND_ALLOW_HTTP = True
