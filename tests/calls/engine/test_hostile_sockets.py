"""A refused or closed call socket is closed once and ignores whatever the client sends after that.

The client here is hostile: it writes the handshake and 1,000 frames in one go on a raw TCP socket (so every frame
is already in the server's buffer when the first one is refused) and keeps the connection open. Every log line the
server writes meanwhile (uvicorn's own loggers included) is counted.
"""
from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

from tests.factories import UserFactory

from .conftest import eventually, make_call_setup

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 1_000
# A refusal logs one line of ours (the reason); a few more would still be bounded, one per message is not.
MAX_LINES = 5


class _Counter(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if not any(r is record for r in self.records):  # attached to several loggers: count a record once
            self.records.append(record)


@pytest.fixture
def server_log_lines():
    counter = _Counter()
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.asgi", "calls",
                                                    "calls.engine", "django", "daphne")]
    for log in loggers:
        log.addHandler(counter)
    yield counter.records
    for log in loggers:
        log.removeHandler(counter)


def _flood(server, path: str, frames: list, *, headers: dict | None = None, wait: float = 1.5) -> bytes:
    """Handshake + every frame written at once; then read what the server says until it hangs up or `wait` ends."""
    port = server.port
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    protocol.send_request(request)
    handshake = b"".join(protocol.data_to_send())
    # Frames are serialised by a protocol that believes the handshake succeeded (the client masks them, as it must).
    from websockets.protocol import OPEN

    protocol.state = OPEN
    for opcode, payload in frames:
        if opcode == Opcode.TEXT:
            protocol.send_text(payload.encode())
        else:
            protocol.send_binary(payload)
    flood = b"".join(protocol.data_to_send())
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(handshake)
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
        sock.sendall(flood)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    # The server has finished with the connection (and logged whatever it logs for it).
    state = server.server.server_state
    assert eventually(lambda: not state.connections and not state.tasks)
    return received


def _ours(records) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records]


@pytest.mark.parametrize("kind", ["media-before-start", "garbage", "binary"])
def test_refused_media_stream_flooded_with_1000_messages_logs_a_bounded_number_of_lines(
        asgi_server, server_log_lines, kind):
    if kind == "media-before-start":
        frame = (Opcode.TEXT, json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
    elif kind == "garbage":
        frame = (Opcode.TEXT, "{not json")
    else:
        frame = (Opcode.BINARY, b"\x00\x01\x02")
    received = _flood(asgi_server, "/v1/stream/media", [frame] * FLOOD)

    assert b"101 Switching Protocols" in received
    lines = _ours(server_log_lines)
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert not any("Unexpected ASGI message" in line or "Exception in ASGI application" in line for line in lines)
    assert sum("stream refused" in line for line in lines) == 1


def test_refused_start_then_flood_is_refused_once(asgi_server, server_log_lines):
    setup = make_call_setup()
    session = setup.new_session()
    start = {"event": "start", "streamSid": "MZ" + "1" * 32,
             "start": {"streamSid": "MZ" + "1" * 32, "callSid": session.call_sid, "customParameters": {"session": "x"}}}
    frames = [(Opcode.TEXT, json.dumps(start))] * FLOOD
    _flood(asgi_server, "/v1/stream/media", frames)

    lines = _ours(server_log_lines)
    assert len(lines) <= MAX_LINES, lines
    assert sum("stream refused" in line for line in lines) == 1


def test_relay_message_before_setup_flood_logs_a_bounded_number_of_lines(asgi_server, server_log_lines):
    frames = [(Opcode.TEXT, json.dumps({"type": "prompt", "voicePrompt": "hi"}))] * FLOOD
    _flood(asgi_server, "/v1/stream/relay", frames, headers={"X-Twilio-Signature": "bogus"})

    lines = _ours(server_log_lines)
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert not any("Unexpected ASGI message" in line for line in lines)


def test_listen_socket_of_an_ended_call_ignores_a_flood_of_interventions(asgi_server, server_log_lines, settings):
    """The listen socket closes after 'not_live'; 1,000 interventions sent after it record nothing and log nothing."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from calls.models import CallIntervention
    from workspaces.models import Membership

    setup = make_call_setup()
    session = setup.new_session()
    session.ended_at = timezone.now()
    session.save(update_fields=["ended_at"])
    user = UserFactory(username="supervisor")
    Membership.objects.create(workspace=setup.workspace, user=user, role=Membership.Role.ADMIN)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store["workspace_id"] = setup.workspace.pk
    store.save()
    frames = [(Opcode.TEXT, json.dumps({"type": "end"}))] * FLOOD
    received = _flood(asgi_server, f"/v1/studio/calls/{session.pk}/listen", frames,
                      headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={store.session_key}",
                               "Origin": "http://127.0.0.1"})

    assert b"not_live" in received
    assert not CallIntervention.objects.exists()
    lines = _ours(server_log_lines)
    assert len(lines) <= MAX_LINES, lines
    assert not any("Unexpected ASGI message" in line for line in lines)


NESTED = "[" * 200_000 + "]" * 200_000  # deeper than the JSON parser recurses


@pytest.mark.parametrize("path,headers", [("/v1/stream/media", {}),
                                          ("/v1/stream/relay", {"X-Twilio-Signature": "bogus"})])
def test_deeply_nested_json_before_admission_is_refused_without_a_traceback(asgi_server, server_log_lines,
                                                                             path, headers):
    _flood(asgi_server, path, [(Opcode.TEXT, NESTED)] * 3, headers=headers)

    lines = _ours(server_log_lines)
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert not any("RecursionError" in line or "Exception in ASGI" in line for line in lines)
    assert not any(r.exc_info for r in server_log_lines)


def test_garbage_after_admission_logs_its_first_frame_and_a_count(asgi_server, server_log_lines):
    """An admitted stream flooded with malformed frames (deeply nested JSON among them): one line for the first,
    one count when the socket closes, never a traceback, and the call itself goes on and ends cleanly."""

    from websockets.asyncio.client import connect

    from calls.models import CallSession

    from .conftest import TwilioMediaClient, eventually, run

    setup = make_call_setup()
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media", max_size=None) as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            for i in range(FLOOD):
                await ws.send(NESTED if i % 250 == 0 else "{not json")
            await twilio.dtmf("1")  # still heard after the flood
            # Twilio's `stop` comes after the flood on the same socket: once the server has closed the stream it
            # has read every frame before it (closing first would race the server's reading of the flood).
            await twilio.stop()
            await twilio.until_closed()

    run(scenario())
    assert eventually(lambda: CallSession.objects.get(pk=session.pk).ended_at is not None)
    # The count is logged when the consumer sees the socket closed, which may come after the call has ended.
    assert eventually(lambda: any("malformed media_streams messages ignored in all" in line
                                  for line in _ours(server_log_lines))), _ours(server_log_lines)
    lines = _ours(server_log_lines)
    assert sum("malformed media_streams message ignored" in line for line in lines) == 1, lines
    assert any(f"{FLOOD} malformed media_streams messages ignored in all" in line for line in lines), lines
    assert not any("call runtime crashed" in line or "RecursionError" in line for line in lines)
    assert not any(r.exc_info for r in server_log_lines if r.levelno >= logging.ERROR)


def test_a_call_socket_whose_client_is_gone_drops_the_engines_messages(server_log_lines):
    """The client went away mid-call: what the engine still sends is dropped (one line), nothing crashes."""
    import asyncio

    from calls.consumers.stream import CallConsumer

    consumer = CallConsumer(wire="media_streams")

    async def gone(message):
        raise OSError("client disconnected")

    consumer.base_send = gone
    asyncio.run(consumer.send_json({"event": "media"}))
    asyncio.run(consumer.send_json({"event": "mark"}))
    lines = _ours(server_log_lines)
    assert consumer.closed and sum("socket gone" in line for line in lines) == 1, lines
