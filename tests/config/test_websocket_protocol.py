"""Our uvicorn websocket protocol (`config.websocket`): reading pauses at a high-water mark of unread messages,
not after every message (sans-I/O: a websocket client's bytes fed to the server protocol over a recording transport)."""
from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from config.websocket import HIGH_WATER, WebSocketProtocol
from tests.conditions import until


class RecordingTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.pauses = self.resumes = 0
        self.closing = False
        self.written: list[bytes] = []

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self):
        self.pauses += 1

    def resume_reading(self):
        self.resumes += 1

    def write(self, data):
        self.written.append(bytes(data))

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True


async def _connect(app):
    config = Config(app=app, ws=WebSocketProtocol, ws_ping_interval=None, lifespan="off", log_level="warning")
    config.load()
    server = config.ws_protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    server.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/v1/stream/media"))
    client.send_request(client.connect())
    server.data_received(b"".join(client.data_to_send()))
    await until(lambda: server.handshake_complete, what="the handshake")
    client.receive_data(b"".join(transport.written))  # the server's 101: the client may send
    client.events_received()
    return server, transport, client


def _send(server, client, text: str) -> None:
    client.send_text(text.encode())
    server.data_received(b"".join(client.data_to_send()))


def test_config_loads_our_protocol_by_its_import_path():
    config = Config(app=lambda *a: None, ws="config.websocket:WebSocketProtocol", lifespan="off")
    config.load()
    assert config.ws_protocol_class is WebSocketProtocol


def test_an_app_that_keeps_up_is_never_paused():
    """A call's 50 frames a second, each taken before the next: no pause and resume per message."""

    async def scenario():
        got = []

        async def app(scope, receive, send):
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            while (message := await receive())["type"] == "websocket.receive":
                got.append(message["text"])

        server, transport, client = await _connect(app)
        for i in range(200):
            _send(server, client, f"frame {i}")
            await until(lambda: len(got) == i + 1, what=f"frame {i} taken", interval=0.001)
        assert got == [f"frame {i}" for i in range(200)]
        assert transport.pauses == 0 and transport.resumes == 0
        server.connection_lost(None)

    asyncio.run(scenario())


def test_an_app_that_falls_behind_stops_the_reading_at_the_mark_and_loses_nothing():
    async def scenario():
        got, go = [], asyncio.Event()

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await go.wait()  # a stalled app: messages pile up unread
            while (message := await receive())["type"] == "websocket.receive":
                got.append(message["text"])

        server, transport, client = await _connect(app)
        for i in range(HIGH_WATER - 1):
            _send(server, client, f"frame {i}")
        assert transport.pauses == 0  # below the mark the socket is still read
        _send(server, client, f"frame {HIGH_WATER - 1}")
        assert transport.pauses == 1 and server.read_paused  # at the mark it is not
        assert server.queue.qsize() == HIGH_WATER
        go.set()
        await until(lambda: len(got) == HIGH_WATER, what="the queued frames taken")
        assert transport.resumes == 1 and not server.read_paused  # drained: read again
        _send(server, client, "after")
        await until(lambda: got[-1:] == ["after"], what="the next frame")
        assert got == [f"frame {i}" for i in range(HIGH_WATER)] + ["after"]
        assert transport.pauses == 1
        server.connection_lost(None)

    asyncio.run(scenario())
