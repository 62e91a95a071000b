"""Smoke test of bench/voice.py: a tiny run on SQLite (dev settings) must issue tokens and dial without errors."""
from bench import voice as bench_voice


def test_voice_benchmark_smoke(monkeypatch, capsys):
    # Always the SQLite path: never point a benchmark server at the test run's own database.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    code = bench_voice.main(["--requests", "20", "--concurrency", "1,4", "--workers", "1", "--threads", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "GET /v1/voice/token c=4" in out and "POST outbound TwiML c=4" in out
    assert "token: throughput ratio" in out and "outbound webhook: throughput ratio" in out
