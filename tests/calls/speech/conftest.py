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


async def cancel_after_first_chunk(tts, text: str = "one two three four five six seven eight") -> list[bytes]:
    """Synthesise in a task and cancel it once the first chunk arrived (the caller barged in); the chunks got."""
    got: list[bytes] = []

    async def consume():
        async for chunk in tts.synthesize(text):
            got.append(chunk)

    task = asyncio.create_task(consume())
    while not got:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return got


@pytest.fixture(autouse=True)
def _db_free(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = True
    settings.OUTBOUND_ALLOW_HTTP = True
