"""The version's speech choices -> stage classes, their secrets and settings.

Vendor modules are imported when a call uses them (a vendor SDK missing from the machine fails that call's start
with a named error, not the whole runtime). Names match `agents.catalogue` (SttVendor, SpeechVendor); the chat
models have their own table (`calls.providers.chat.VENDORS`).

Settings per vendor, from the environment (secrets, else variables): `<VENDOR>_API_KEY` (the secret; required
except offline), `<VENDOR>_BASE_URL` (tests point it at a local fake).
"""
from __future__ import annotations

from agents import catalogue
from calls.providers.lookup import load_class
from calls.providers.speech.base import SpeechConfigError, SpeechSettings

STT = {
    "offline": "calls.providers.speech.offline:PocketsphinxSpeechToText",
    "deepgram": "calls.providers.speech.deepgram:DeepgramSpeechToText",
    "openai": "calls.providers.speech.openai_speech:OpenAISpeechToText",
    "openai_local": "calls.providers.speech.openai_local:LocalSpeechToText",
}
TTS = {
    "offline": "calls.providers.speech.offline:EspeakTextToSpeech",
    "deepgram": "calls.providers.speech.deepgram:DeepgramTextToSpeech",
    "elevenlabs": "calls.providers.speech.elevenlabs:ElevenLabsTextToSpeech",
    "cartesia": "calls.providers.speech.cartesia:CartesiaTextToSpeech",
    "openai": "calls.providers.speech.openai_speech:OpenAITextToSpeech",
    "openai_local": "calls.providers.speech.openai_local:LocalTextToSpeech",
}
PREFIX = {"deepgram": "DEEPGRAM", "openai": "OPENAI", "elevenlabs": "ELEVENLABS", "cartesia": "CARTESIA",
          "anthropic": "ANTHROPIC", "offline": "", "openai_local": "LOCAL_SPEECH"}


def _load(table: dict, vendor: str, what: str):
    return load_class(table, vendor, f"{what} vendor", SpeechConfigError)


def settings_for(ctx, vendor: str, *, voice: str = "", model: str = "", hints: tuple[str, ...] = ()) -> SpeechSettings:
    prefix = PREFIX.get(vendor, vendor.upper())
    api_key = ctx.setting(f"{prefix}_API_KEY") if prefix else ""
    secret = catalogue.VENDOR_SECRETS.get(vendor, "")
    if secret and not api_key:
        raise SpeechConfigError(f"The environment has no {secret} secret.")
    return SpeechSettings(language=ctx.language or "en-US", voice=voice, model=model, api_key=api_key,
                          base_url=ctx.setting(f"{prefix}_BASE_URL") if prefix else "", hints=hints)


def speech_to_text(ctx, vendor: str, *, model: str = "", hints: tuple[str, ...] = ()):
    settings = settings_for(ctx, vendor or "offline", model=model, hints=hints)  # the key first: a named error
    return _load(STT, vendor or "offline", "speech recognition")(settings)


def text_to_speech(ctx, vendor: str, *, voice: str = "", model: str = ""):
    settings = settings_for(ctx, vendor or "offline", voice=voice, model=model)
    return _load(TTS, vendor or "offline", "text-to-speech")(settings)
