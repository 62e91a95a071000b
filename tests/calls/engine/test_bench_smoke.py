"""Smoke test of bench/media_streams.py's measuring code: two echo calls for half a second (no timing asserts)."""
import asyncio

import pytest

from bench.media_streams import measure

from .conftest import make_call_setup

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_measure_runs_calls_through_the_runtime(asgi_server):
    setup = make_call_setup(variables={"SCRIPTED_AUDIO_ECHO": "1"})
    calls = []
    for _ in range(2):
        session = setup.new_session()
        calls.append((setup.token(session), session.call_sid))
    result = asyncio.run(measure(asgi_server.ws_base + "/v1/stream/media", calls, 0.5))
    assert result["calls"] == 2
    assert result["frames"] == 2 * 25
    assert result["dropped"] == 0  # every frame came back through the runtime
    assert result["p50_ms"] >= 0
