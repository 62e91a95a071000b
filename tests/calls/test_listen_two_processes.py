"""Listening across processes on a real Redis channel layer: the call runs in this process (uvicorn in a thread),
the supervisor's browser is connected to a second uvicorn *process* sharing the database and Redis; the call's
control loop forwards both sides' audio there. Also: the control loop survives channel layer failures, and the
Redis layer's reads may block longer than its own wait (the ~5 idle seconds bug)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from calls.engine import live

from .conftest import Reader, browser_ws, cookie_for, member_of
from .engine.conftest import TwilioMediaClient, make_call_setup, run

REDIS_URL = os.environ.get("CALLWELL_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
LOUD = bytes([0x10]) * 160


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_redis_layer_may_block_longer_than_it_waits(monkeypatch):
    """channels_redis blocks 5 s in BZPOPMIN; redis-py's default socket timeout is 5 s: an idle receive timed out."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.utils import create_pool

    from config.settings.base import channel_layers_from_env

    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    config = channel_layers_from_env()["default"]
    layer = RedisChannelLayer(**config["CONFIG"])
    pool = create_pool(config["CONFIG"]["hosts"][0])
    assert pool.connection_kwargs["socket_timeout"] > layer.brpop_timeout


class _FlakyLayer:
    """A channel layer whose first receives fail as Redis did (TimeoutError), then delivers an intervention."""

    def __init__(self, failures: int):
        self.failures = failures
        self.queue: asyncio.Queue = asyncio.Queue()
        self.groups = 0

    async def new_channel(self):
        return "ctl!1"

    async def group_add(self, group, channel):
        self.groups += 1

    async def group_discard(self, group, channel):
        pass

    async def receive(self, channel):
        if self.failures:
            self.failures -= 1
            raise TimeoutError("Timeout reading from 127.0.0.1:6379")
        return await self.queue.get()

    async def send(self, channel, message):
        pass


@pytest.mark.django_db(transaction=True)
def test_the_control_loop_survives_channel_layer_failures(monkeypatch):
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open
    from calls.engine.events import Instruction

    layer = _FlakyLayer(failures=3)
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda *a, **k: layer)
    ctx = CallContext(transport="text", provider="scripted", call_session_id=10**6, workspace_id=1)

    async def scenario():
        from calls.providers.scripted import ScriptedProvider

        provider = ScriptedProvider(ctx)
        call = call_open("text", ctx, lambda m: asyncio.sleep(0), provider=provider)
        call.live = True
        control = asyncio.create_task(call._control_loop())
        await layer.queue.put({"type": "call.intervene", "kind": "instruction", "detail": "Be brief."})
        while not any(isinstance(e, Instruction) for e in list(provider.events._queue)):
            await asyncio.sleep(0.01)
        control.cancel()
        try:
            await control
        except asyncio.CancelledError:
            pass
        return [e for e in provider.events._queue if isinstance(e, Instruction)]

    instructions = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert instructions and instructions[0].text == "Be brief." and layer.failures == 0


def _test_database_url() -> str:
    """The database this test run writes to (SQLite file or PostgreSQL test database), for another process."""
    db = django_settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        auth = db.get("USER") or ""
        if db.get("PASSWORD"):
            auth += ":" + db["PASSWORD"]
        return f"postgres://{auth}{'@' if auth else ''}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{Path(db['NAME']).resolve()}"


class _SecondProcess:
    """uvicorn serving the same project in another process, on the test database and the same Redis."""

    def __init__(self, run_dir: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "CALLWELL_TEST_RUN_DIR": run_dir,
               "DATABASE_URL": _test_database_url(), "REDIS_URL": REDIS_URL}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--ws-ping-interval", "0",
             "--ws", "config.websocket:WebSocketProtocol"],
            env=env, cwd=str(django_settings.BASE_DIR), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the second process did not start: {self.proc.stderr.read()[-2000:]!r}")
                time.sleep(0.1)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return (err or b"").decode(errors="replace")


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
@pytest.mark.django_db(transaction=True)
def test_a_listener_on_another_process_hears_the_call(asgi_server, twilio_sandbox, settings, monkeypatch, tmp_path):
    from channels.layers import channel_layers

    from config.settings.base import channel_layers_from_env

    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    settings.CHANNEL_LAYERS = channel_layers_from_env()
    channel_layers.backends = {}
    setup = make_call_setup(sandbox=twilio_sandbox, variables={"SCRIPTED_AUDIO_ECHO": "1"})
    session = setup.new_session(sandbox=twilio_sandbox)
    cookie = cookie_for(member_of(setup.workspace))
    token = setup.token(session)
    other = _SecondProcess(str(tmp_path))

    async def scenario():
        from websockets.asyncio.client import connect

        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            while live.get(session.pk) is None:
                await asyncio.sleep(0.02)
            engine = live.get(session.pk)
            async with browser_ws(other, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
                reader = Reader(listen)
                hello = await reader.until(lambda m: m["kind"] == "hello", timeout=15)
                while not any(isinstance(lst, live.RemoteListener) for lst in engine.listeners):
                    await asyncio.sleep(0.02)  # the join travels through Redis to the call's control group
                for i in range(10):
                    await twilio.media(LOUD, chunk=i)
                tracks = lambda: [t for t, frame in reader.audio if frame == LOUD]  # noqa: E731
                try:
                    await asyncio.wait_for(_until_audio(reader, tracks), 15)
                except asyncio.TimeoutError:
                    pass
            await twilio.stop()
        return hello, reader.audio

    try:
        hello, audio = run(scenario())
    finally:
        errors = other.stop()
        channel_layers.backends = {}
    assert hello["remote"] is True
    caller = [frame for track, frame in audio if track == live.TRACK_CALLER]
    agent = [frame for track, frame in audio if track == live.TRACK_AGENT]
    assert len(caller) == 10 and len(agent) == 10, (len(caller), len(agent))
    assert "Traceback" not in errors, errors[-3000:]


async def _until_audio(reader, tracks):
    while len(tracks()) < 20:
        try:
            await reader.drain(0.2)
        except Exception:  # noqa: BLE001
            return
