"""The live-call runtime: Media Streams and ConversationRelay sessions driving an agent provider.

Modules:
- `context`: `CallContext`, everything a call needs, resolved once when a stream is admitted.
- `events`: what providers emit (audio, text tokens, handovers, hang-ups, transcript turns, failures).
- `audio`: μ-law helpers (energy for voice activity, tone/silence prompts).
- `engine`: `CallEngine`, the call itself (no wire format); `call_open(wire, ctx, send)` pairs it with its wire.
- `wires/`: one adapter per transport (Media Streams, ConversationRelay, the test chat, the browser call).
"""
