"""Waiting in tests: on a condition, never for a time (DEVELOPERS.md). The ceiling only stops a test that would
otherwise hang; it is generous, so a slow or loaded machine never fails a test that would pass."""
from __future__ import annotations

import asyncio
import inspect
import time

CEILING = 180.0  # seconds (a loaded 2-core machine runs the offline speech stack slowly)


async def until(predicate, *, what: str = "the condition", ceiling: float = CEILING, interval: float = 0.01) -> None:
    """Wait until `predicate()` holds; a predicate returning an awaitable (e.g. `asyncio.to_thread(...)`) is awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ceiling
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} never held")
        await asyncio.sleep(interval)


def eventually(predicate, *, ceiling: float = CEILING, interval: float = 0.05) -> bool:
    """The same for synchronous code (a thread or the test itself): True once it holds, False at the ceiling."""
    deadline = time.monotonic() + ceiling
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
