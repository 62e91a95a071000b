"""Runtime fixtures: the real ASGI app served by uvicorn on 127.0.0.1, local OpenAI fakes, a call set-up."""
from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass

import pytest
import uvicorn
from twilio.request_validator import RequestValidator

from agents.models import EnvironmentSecret, EnvironmentVariable, HandoverAction
from calls.models import CallSession
from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of
from tests.conditions import CEILING, until  # noqa: F401 - `until` is imported from here by the engine tests
from tests.conditions import eventually as _eventually
from tests.factories import TwilioConnectionFactory, WorkspaceFactory
from tests.fakes.openai_chat import FakeChatServer
from tests.fakes.openai_realtime import FakeRealtimeServer


class AsgiServer:
    """uvicorn running `config.asgi.application` in a thread, on a free loopback port."""

    def __init__(self, app=None):
        if app is None:
            from config.asgi import application as app

        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
                                     ws_ping_interval=None, ws="config.websocket:WebSocketProtocol")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "AsgiServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def asgi_server(transactional_db):
    server = AsgiServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_chat():
    fake = FakeChatServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_realtime():
    fake = FakeRealtimeServer().start()
    yield fake
    fake.stop()


@dataclass
class CallSetup:
    workspace: object
    connection: object
    connector: object
    version: object
    environment: object
    session: object | None = None

    def new_session(self, call_sid: str | None = None, sandbox=None) -> CallSession:
        call_sid = call_sid or "CA" + secrets.token_hex(16)
        if sandbox is not None:
            sandbox.add_call(self.connection.account_sid, call_sid)
        self.session = CallSession.objects.create(
            call_sid=call_sid, workspace=self.workspace, connector=self.connector, agent_version=self.version,
            environment=self.environment, from_number="+15125550199", to_number="+15125550100",
            status=CallSession.Status.IN_PROGRESS)
        return self.session

    def token(self, session=None) -> str:
        from connectors.services import stream_token_issue

        return stream_token_issue(call_session=session or self.session)

    def sign(self, url: str, params: dict | None = None) -> str:
        return RequestValidator(self.connection.auth_token).compute_signature(url, params or {})


def make_call_setup(*, sandbox=None, provider="scripted", transport="media_streams", secrets_: dict | None = None,
                    variables: dict | None = None, workspace=None) -> CallSetup:
    workspace = workspace or WorkspaceFactory()
    if sandbox is not None:
        sid, token = sandbox.add_account(friendly_name="Runtime test")
        connection = TwilioConnectionFactory(workspace=workspace, account_sid=sid, auth_token=token)
    else:
        connection = TwilioConnectionFactory(workspace=workspace)
    agent = AgentFactory(workspace=workspace, name="Ava")
    version = draft_of(agent)
    version.provider = provider
    version.transport = transport
    version.greeting = "Hello, this is Ava."
    version.instructions = "Help callers of Acme."
    version.scripted_answers = [{"keywords": ["hours", "open"], "answer": "We are open nine to five."}]
    version.handover_rules = [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"},
                              {"keyword": "support", "digit": "2", "action": "transfer_to_support"},
                              {"keyword": "goodbye", "digit": "9", "action": "hangup"}]
    version.save()
    HandoverAction.objects.create(version=version, name="transfer_to_sales", destination="+31201234567",
                                  description="The caller wants to buy something.")
    HandoverAction.objects.create(version=version, name="transfer_to_support", destination="+31207654321",
                                  description="The caller needs help with a product.")
    environment = EnvironmentFactory(workspace=workspace)
    for name, value in (secrets_ or {}).items():
        EnvironmentSecret.objects.create(environment=environment, name=name, value=value)
    for name, value in (variables or {}).items():
        EnvironmentVariable.objects.create(environment=environment, name=name, value=value)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=environment,
                                      version_mode="draft")
    return CallSetup(workspace, connection, connector, version, environment)


# ---------------------------------------------------------------------------
# A fake Twilio on the other end of the socket


class TwilioMediaClient:
    """Plays Twilio's side of a bidirectional Media Stream over a real websocket."""

    def __init__(self, ws, stream_sid="MZ" + "0" * 32):
        self.ws = ws
        self.stream_sid = stream_sid
        self.received: list[dict] = []
        self.echo_marks = True

    async def start(self, *, token, call_sid, account_sid="", connected=True):
        import json

        if connected:
            await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.ws.send(json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
            "start": {"streamSid": self.stream_sid, "accountSid": account_sid, "callSid": call_sid,
                      "tracks": ["inbound"], "customParameters": {"session": token} if token is not None else {},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))

    async def media(self, payload: bytes, chunk: int = 1, stream_sid=None):
        import base64
        import json

        await self.ws.send(json.dumps({"event": "media", "sequenceNumber": str(chunk + 1),
                                       "streamSid": stream_sid or self.stream_sid,
                                       "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                                                 "payload": base64.b64encode(payload).decode()}}))

    async def send(self, msg: dict):
        import json

        await self.ws.send(json.dumps(msg))

    async def dtmf(self, digit: str):
        await self.send({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self):
        await self.send({"event": "stop", "streamSid": self.stream_sid, "stop": {}})

    async def read_until(self, predicate, timeout=CEILING) -> dict:
        """Read messages (echoing marks like Twilio would) until one satisfies predicate."""
        import json

        async def loop():
            while True:
                msg = json.loads(await self.ws.recv())
                self.received.append(msg)
                if msg.get("event") == "mark" and self.echo_marks:
                    await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": msg["mark"]})
                if predicate(msg):
                    return msg

        return await asyncio.wait_for(loop(), timeout)

    async def until_closed(self, ceiling=CEILING) -> list[dict]:
        """Read (echoing marks, as Twilio does once audio has played) until the server closes the stream."""
        from websockets.exceptions import ConnectionClosed

        got: list[dict] = []
        try:
            await self.read_until(lambda m: got.append(m) and False, timeout=ceiling)
        except ConnectionClosed:
            pass
        return got

    async def until(self, predicate) -> None:
        """Keep reading (and echoing marks) until `predicate()` holds; an async predicate is awaited."""
        async def held_else_read():
            held = predicate()
            held = (await held) if asyncio.iscoroutine(held) else held
            if not held:
                try:
                    await self.read_until(lambda m: True, timeout=0.05)  # a poll interval, not a wait for time
                except asyncio.TimeoutError:
                    pass
            return held

        await until(held_else_read, interval=0)

    async def drain(self, seconds=0.3):
        try:
            await self.read_until(lambda m: False, timeout=seconds)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            pass


def run(coro):
    return asyncio.run(coro)


def eventually(predicate, timeout=CEILING):
    """Poll `predicate` (e.g. a DB check after the client closed: the server stores on its own schedule)."""
    return _eventually(predicate, ceiling=timeout)
