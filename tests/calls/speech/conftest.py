"""Helpers for the vendor speech stages' tests: run a coroutine, collect a stage's events and audio."""
from __future__ import annotations

import asyncio

import pytest


def run(coro, timeout: float = 15.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def next_event(stt, timeout: float = 5.0):
    return await asyncio.wait_for(stt.events.get(), timeout)


async def events_until_final(stt, timeout: float = 5.0) -> list:
    """Every event up to and including the first Final or SpeechFailure."""
    from calls.providers.speech.base import Final, SpeechFailure

    seen = []
    while True:
        event = await next_event(stt, timeout)
        seen.append(event)
        if isinstance(event, (Final, SpeechFailure)) or event is None:
            return seen


async def synthesize_all(tts, text: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text)]


@pytest.fixture(autouse=True)
def _db_free(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = True
    settings.OUTBOUND_ALLOW_HTTP = True
