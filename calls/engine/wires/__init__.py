"""Wire adapters: one module per transport, the way Pipecat's frame serializers are.

A wire translates one transport's messages: what the far end sends (`receive`) becomes calls on the engine or its
provider (audio, text, keys, barge-in, the end of the stream); what the engine decides (agent audio or text,
marks, barge-in, a handover, the hang-up, the apology) becomes that transport's messages. The engine
(`calls.engine.engine.CallEngine`) owns the call and knows no wire format.

`WIRES` is the registry ("module:Class", imported on first use). Adding a transport: one module here with a `Wire`
subclass, one row below, and (for a new socket) its route in config/routing.py; see docs/runtime.md.
"""
from __future__ import annotations

import importlib
from functools import cache

WIRES: dict[str, str] = {
    "media_streams": "calls.engine.wires.media_streams:MediaStreamsWire",  # Twilio bidirectional Media Streams
    "conversation_relay": "calls.engine.wires.relay:RelayWire",  # Twilio ConversationRelay (text in, text out)
    "text": "calls.engine.wires.text_chat:TextChatWire",  # Studio's test chat
    "browser": "calls.engine.wires.browser:BrowserWire",  # Studio's Call this version (Media Streams + studio)
}


@cache
def wire_class(name: str):
    module, _, cls = WIRES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
