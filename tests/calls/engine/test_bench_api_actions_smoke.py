"""Smoke test of bench/api_actions.py's measuring code: a few actions through the engine (no timing asserts)."""
import asyncio

from bench.api_actions import measure


def test_bench_measure_runs_actions_through_the_engine():
    result = asyncio.run(measure(3, 0))
    assert len(result["baseline"]) == len(result["engine"]) == 3
    assert result["runs"] == 8  # warm-up runs included: every one went through the engine and was recorded
