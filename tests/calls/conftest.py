"""Calls in Studio: reuse the runtime's loopback ASGI server and simulated Twilio streams (tests/calls/engine)."""
from __future__ import annotations

import asyncio
import json

import pytest
from django.test import Client
from websockets.asyncio.client import connect

from tests.calls.engine.conftest import (  # noqa: F401  (fixtures re-exported)
    AsgiServer,
    TwilioMediaClient,
    asgi_server,
    eventually,
    make_call_setup,
    run,
)
from tests.conditions import CEILING, until
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    client.get("/")  # the middleware stores the current workspace in the session
    return f"sessionid={client.cookies['sessionid'].value}"


def member_of(workspace, role=Membership.Role.MEMBER):
    user = UserFactory()
    MembershipFactory(workspace=workspace, user=user, role=role)
    return user


def browser_ws(server, path, cookie=None):
    headers = {"Origin": "http://127.0.0.1"}
    if cookie:
        headers["Cookie"] = cookie
    return connect(server.ws_base + path, additional_headers=headers)


class Reader:
    """Reads a Studio socket: JSON events into `events`, binary audio frames into `audio` (track, bytes)."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.audio: list[tuple[int, bytes]] = []

    async def until(self, predicate, timeout=CEILING) -> dict:
        async def loop():
            while True:
                raw = await self.ws.recv()
                if isinstance(raw, bytes):
                    self.audio.append((raw[0], raw[1:]))
                    continue
                msg = json.loads(raw)
                self.events.append(msg)
                if predicate(msg):
                    return msg
        return await asyncio.wait_for(loop(), timeout)

    async def drain(self, seconds=0.3):
        try:
            await self.until(lambda m: False, timeout=seconds)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            pass

    async def until_audio(self, count: int, timeout=CEILING) -> None:
        """Read until `count` audio frames have arrived (events read meanwhile are kept too)."""
        async def loop():
            while len(self.audio) < count:
                raw = await self.ws.recv()
                if isinstance(raw, bytes):
                    self.audio.append((raw[0], raw[1:]))
                else:
                    self.events.append(json.loads(raw))
        await asyncio.wait_for(loop(), timeout)


async def until_true(predicate) -> None:
    """Wait for a condition checked in a thread (database reads, the sandbox's state): a condition, not a pause."""
    await until(lambda: asyncio.to_thread(predicate), interval=0.02)


@pytest.fixture
def call_setup(twilio_sandbox, transactional_db):
    return make_call_setup(sandbox=twilio_sandbox)


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test runs its own server loop: give it a fresh channel layer (channels_redis keeps per-loop state, the
    in-memory layer keeps groups of closed sockets), as a real process has one loop for its life."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
