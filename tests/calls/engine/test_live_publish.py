"""Live view events from many calls at once: published in turns, none lost to the channel layer's own pool."""
import asyncio

from calls.engine import live
from tests.conditions import CEILING


class PoolLayer:
    """A channel layer whose client pool refuses more than `limit` sends in flight (redis-py raises
    MaxConnectionsError at once); each send waits at `gate` so that every caller is in flight together."""

    def __init__(self, limit: int):
        self.limit, self.in_flight, self.peak, self.sent = limit, 0, 0, 0
        self.gate = asyncio.Event()
        self.full = asyncio.Event()  # as many sends in flight as the publisher allows

    async def group_send(self, group, message):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= live.PUBLISH_CONCURRENCY:
            self.full.set()
        try:
            if self.in_flight > self.limit:
                raise ConnectionError("Too many connections")
            await self.gate.wait()
            self.sent += 1
        finally:
            self.in_flight -= 1


def test_three_hundred_calls_publishing_together_lose_no_event(monkeypatch):
    layer = PoolLayer(limit=100)
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda *a, **k: layer)

    async def scenario():
        tasks = [asyncio.create_task(live.publish(7, {"kind": "turn", "n": i})) for i in range(300)]
        await asyncio.wait_for(layer.full.wait(), CEILING)  # the first publishers hold every slot
        layer.gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert layer.sent == 300
    assert layer.peak <= live.PUBLISH_CONCURRENCY < layer.limit
