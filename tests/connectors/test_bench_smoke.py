"""The webhook benchmark runs end to end (tiny request count, SQLite, gunicorn on loopback)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_connector_webhook_benchmark_smoke():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.connector_webhook", "--requests", "10", "--concurrency", "1,2",
         "--workers", "1", "--threads", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert "healthz (baseline) c=1" in out and "webhook twilio-config c=2" in out
    assert "statuses {200: 10}" in out  # every signed request was answered with TwiML
