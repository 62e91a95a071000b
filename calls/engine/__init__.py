"""The live-call runtime: Media Streams and ConversationRelay sessions driving an agent provider.

Modules:
- `context`: `CallContext`, everything a call needs, resolved once when a stream is admitted.
- `events`: what providers emit (audio, text tokens, handovers, hang-ups, transcript turns, failures).
- `audio`: μ-law helpers (energy for voice activity, tone/silence prompts).
- `calls`: the per-call engines (`MediaStreamCall`, `RelayCall`, `TextChatCall`), transport-independent.
"""
