"""The base of every call websocket: once closed (by us, or by the client), it stays closed.

A hostile client may keep writing after we refused or closed its socket. Without this, each of those messages
reached our handlers again: another refusal, another `websocket.close`, and the ASGI server raised ("Unexpected
ASGI message 'websocket.close', after sending 'websocket.close'") and logged a traceback per message. Here the
first `websocket.close` we send (or the client's `websocket.disconnect`) marks the socket closed; after that every
frame the client sends is dropped unread, and anything we would still send (a late engine event, a second close) is
dropped too.
"""
from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer


class ClosingOnceConsumer(AsyncWebsocketConsumer):
    closed = False

    def _guard(self, receive, send):
        """(receive, send) that drop the client's frames and our sends once the socket is closed."""
        self.closed = False

        async def guarded_send(message):
            if self.closed:
                return
            if message.get("type") == "websocket.close":
                self.closed = True
            await send(message)

        async def guarded_receive():
            while True:
                message = await receive()
                kind = message.get("type")
                if kind == "websocket.disconnect":
                    self.closed = True
                    return message
                if self.closed and kind == "websocket.receive":
                    continue  # the socket is closed: what the client still sends is not read
                return message

        return guarded_receive, guarded_send

    async def __call__(self, scope, receive, send):
        receive, send = self._guard(receive, send)
        await super().__call__(scope, receive, send)
