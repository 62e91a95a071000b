"""Smoke test of bench/listen_fanout.py's measuring code: one echo call, 0 then 2 listeners, half a second each."""
import asyncio

import pytest

from bench.listen_fanout import measure_level

from .conftest import cookie_for, make_call_setup, member_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_measures_a_call_with_and_without_listeners(asgi_server):
    setup = make_call_setup(variables={"SCRIPTED_AUDIO_ECHO": "1"})
    cookie = cookie_for(member_of(setup.workspace))
    results = []
    for listeners in (0, 2):
        session = setup.new_session()
        calls = [(setup.token(session), session.call_sid, session.pk)]
        results.append(asyncio.run(measure_level(asgi_server.ws_base, calls, listeners, cookie, 0.5)))
    none, two = results
    assert (none["frames"], none["dropped"], none["listener_frames"]) == (25, 0, 0)
    assert (two["frames"], two["dropped"]) == (25, 0)  # listeners never cost the call a frame
    assert two["listener_frames"] >= 2 * 2 * 25 * 0.9  # both listeners heard both sides
    assert none["p50_ms"] >= 0 and two["p50_ms"] >= 0
