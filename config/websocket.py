"""uvicorn's websocket protocol (websockets' sans-I/O implementation) with flow control by a high-water mark.

uvicorn's `websockets-sansio` protocol (what `--ws auto` picks with uvicorn 0.55) stops reading the socket after every message and starts again once
the app has taken it: two `epoll_ctl` calls, and the selector's bookkeeping, per message. A phone call sends 50
audio frames a second, so at 200 calls per process that was 20,000 pauses and resumes a second on the event
loop (py-spy: 5-6 % of its samples in the selector's add/remove alone, under `bench.media_streams_served`). Here reading pauses only once `HIGH_WATER`
messages wait unread (a slow app still holds back a fast client; memory stays bounded by HIGH_WATER messages of
at most `--ws-max-size` each) and resumes when the app has taken them all, as before.

    uvicorn config.asgi:application --ws config.websocket:WebSocketProtocol --ws-ping-interval 0 --no-access-log
"""
from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HIGH_WATER = 16  # unread messages before the socket stops being read (a call's 320 ms of audio)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # the parent pauses reading unless it already is: here only past the mark
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()
