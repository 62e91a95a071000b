"""Security baseline: `manage.py check --deploy` passes with production settings; required secrets are required."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **overrides) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "calls.example.com",
        "PUBLIC_BASE_URL": "https://calls.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_on_an_insecure_setting(tmp_path):
    """The check is real: turning off HSTS makes it fail."""
    result = manage(production_env(tmp_path, DJANGO_SECURE_HSTS_SECONDS="0"), "check", "--deploy", "--fail-level",
                    "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DJANGO_ALLOWED_HOSTS",
                                     "PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL"])
def test_production_requires_its_secrets_and_services_from_the_environment(tmp_path, missing):
    result = manage(production_env(tmp_path, **{missing: None}), "check")
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.parametrize("override, check_id", [
    ({"TWILIO_API_BASE_URL": "http://127.0.0.1:8765"}, "dialer.W001"),  # the sandbox is never production's Twilio
    ({"PUBLIC_BASE_URL": "http://calls.example.com"}, "dialer.W002"),  # webhooks must be https
])
def test_check_deploy_fails_on_dev_twilio_settings(tmp_path, override, check_id):
    result = manage(production_env(tmp_path, **override), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert check_id in result.stdout + result.stderr
