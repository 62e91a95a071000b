"""Smoke test of bench/settings_dialer.py: a tiny run on SQLite (dev settings) serves the pages without errors."""
from bench import settings_dialer


def test_settings_dialer_benchmark_smoke(monkeypatch, capsys):
    # Always the SQLite path: never point a benchmark server at the test run's own database.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    code = settings_dialer.main(["--requests", "10", "--concurrency", "2", "--numbers", "20", "--workers", "1",
                                 "--threads", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "healthz (baseline)" in out
    assert "settings/dialer (20 numbers): throughput ratio to healthz = " in out
    assert "settings/dialer/numbers (20 numbers): throughput ratio to healthz = " in out
