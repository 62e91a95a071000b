"""What each agent provider needs (transport, secrets); ConversationRelay's speech vendors: the providers, a curated
voice list per provider and the speech models.

Names and defaults follow Twilio's `<ConversationRelay>` TwiML reference
(twilio.com/docs/voice/twiml/connect/conversationrelay): `ttsProvider` is Google, Amazon or ElevenLabs (default
ElevenLabs); `voice` defaults to UgBBYS2sOqTuMpoF3BR0 (ElevenLabs), en-US-Journey-O (Google), Joanna-Neural
(Amazon); `transcriptionProvider` is Google or Deepgram (default Deepgram); `speechModel` defaults to telephony
(Google) and nova-3-general (Deepgram). Twilio drops the call when a voice or speech model does not belong to the
provider, so the form checks them against this list before a version can be saved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import models


class TtsProvider(models.TextChoices):
    GOOGLE = "Google", "Google"
    AMAZON = "Amazon", "Amazon (Polly)"
    ELEVENLABS = "ElevenLabs", "ElevenLabs"


class TranscriptionProvider(models.TextChoices):
    GOOGLE = "Google", "Google"
    DEEPGRAM = "Deepgram", "Deepgram"


class Interruptible(models.TextChoices):
    """What caller input may interrupt the agent's speech (Twilio's values)."""

    ANY = "any", "Speech or key presses (any)"
    SPEECH = "speech", "Speech only"
    DTMF = "dtmf", "Key presses only (dtmf)"
    NONE = "none", "Nothing (none)"


# Twilio's defaults when the attribute is left out.
DEFAULT_TTS_PROVIDER = TtsProvider.ELEVENLABS
DEFAULT_TRANSCRIPTION_PROVIDER = TranscriptionProvider.DEEPGRAM
DEFAULT_INTERRUPTIBLE = Interruptible.ANY
# `multi` (automatic language detection) needs ElevenLabs for speech and Deepgram with one of these models.
MULTI = "multi"
MULTI_SPEECH_MODELS = ("nova-2-general", "nova-3-general")


@dataclass(frozen=True)
class Voice:
    id: str
    label: str
    language: str = ""  # BCP-47 locale the voice speaks; empty for multilingual voices


VOICES: dict[str, tuple[Voice, ...]] = {
    TtsProvider.ELEVENLABS: (
        Voice("UgBBYS2sOqTuMpoF3BR0", "Mark: natural, conversational (Twilio's default)"),
        Voice("g6xIsTj2HwM6VR4iXFCw", "Jessica Anne: friendly, warm"),
        Voice("56AoDkrOh6qfVPDXZ7Pt", "Cassidy: crisp, confident"),
        Voice("rCmVtv8cYU60uhlsOo1M", "Ana: soft, British"),
        Voice("21m00Tcm4TlvDq8ikWAM", "Rachel: calm"),
        Voice("pNInz6obpgDQGcFmaJgB", "Adam: deep"),
        Voice("NOpBlnGInO9m6vDvFkFC", "Grandpa Spuds: humorous, disarming"),
    ),
    TtsProvider.GOOGLE: (
        Voice("en-US-Journey-O", "Journey O, US English (Twilio's default)", "en-US"),
        Voice("en-US-Journey-D", "Journey D, US English", "en-US"),
        Voice("en-US-Journey-F", "Journey F, US English", "en-US"),
        Voice("en-US-Chirp3-HD-Aoede", "Chirp 3 HD Aoede, US English", "en-US"),
        Voice("en-US-Neural2-F", "Neural2 F, US English", "en-US"),
        Voice("en-GB-Journey-D", "Journey D, British English", "en-GB"),
        Voice("en-GB-Journey-F", "Journey F, British English", "en-GB"),
        Voice("en-IN-Journey-D", "Journey D, Indian English", "en-IN"),
        Voice("de-DE-Journey-D", "Journey D, German", "de-DE"),
        Voice("de-DE-Journey-F", "Journey F, German", "de-DE"),
        Voice("fr-FR-Neural2-A", "Neural2 A, French", "fr-FR"),
        Voice("es-ES-Neural2-A", "Neural2 A, Spanish", "es-ES"),
        Voice("nl-NL-Wavenet-B", "Wavenet B, Dutch", "nl-NL"),
    ),
    TtsProvider.AMAZON: (
        Voice("Joanna-Neural", "Joanna, US English (Twilio's default)", "en-US"),
        Voice("Matthew-Neural", "Matthew, US English", "en-US"),
        Voice("Ruth-Generative", "Ruth (generative), US English", "en-US"),
        Voice("Matthew-Generative", "Matthew (generative), US English", "en-US"),
        Voice("Amy-Generative", "Amy (generative), British English", "en-GB"),
        Voice("Vicki-Neural", "Vicki, German", "de-DE"),
        Voice("Lea-Neural", "Léa, French", "fr-FR"),
        Voice("Lucia-Neural", "Lucia, Spanish", "es-ES"),
        Voice("Laura-Neural", "Laura, Dutch", "nl-NL"),
        Voice("Elin-Neural", "Elin, Swedish", "sv-SE"),
    ),
}

SPEECH_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    TranscriptionProvider.DEEPGRAM: (
        ("nova-3-general", "Nova-3 general (Twilio's default)"),
        ("nova-2-general", "Nova-2 general (languages Nova-3 lacks)"),
        ("nova-2-phonecall", "Nova-2 phone call (English)"),
    ),
    TranscriptionProvider.GOOGLE: (
        ("telephony", "Telephony (Twilio's default)"),
        ("telephony_short", "Telephony, short utterances"),
        ("long", "Long"),
        ("short", "Short"),
    ),
}

# ElevenLabs voices may carry Twilio's tuning suffix: VOICEID-MODEL-SPEED_STABILITY_SIMILARITY
# (e.g. UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.0_0.8_0.6).
ELEVENLABS_MODELS = ("flash_v2_5", "flash_v2", "turbo_v2_5", "turbo_v2")
_NUM = r"\d(?:\.\d{1,2})?"
_ELEVENLABS_RE = re.compile(
    rf"^(?P<id>[A-Za-z0-9]{{20}})(?:-(?P<model>[a-z0-9_]+)(?:-{_NUM}_{_NUM}_{_NUM})?)?$"
)

# BCP-47 as Twilio uses it: language, optional script, optional region (en-US, zh-Hans-CN, es-419).
_BCP47_RE = re.compile(r"^(?P<lang>[a-z]{2,3})(?:-(?P<script>[A-Z][a-z]{3}))?(?:-(?P<region>[A-Z]{2}|\d{3}))?$")


def normalise_language(value: str) -> str | None:
    """The code in canonical case (en-us → en-US, MULTI → multi), or None when it is not a BCP-47 tag."""
    value = (value or "").strip()
    if value.lower() == MULTI:
        return MULTI
    parts = value.replace("_", "-").split("-")
    out = []
    for i, part in enumerate(parts):
        if i == 0:
            out.append(part.lower())
        elif len(part) == 4 and part.isalpha():
            out.append(part.capitalize())
        else:
            out.append(part.upper())
    code = "-".join(out)
    return code if _BCP47_RE.match(code) else None


def primary_language(code: str) -> str:
    return (code or "").split("-")[0].lower()


def voice_base(provider: str, voice: str) -> str:
    """The catalogue id inside `voice` (ElevenLabs voices may carry a model/tuning suffix)."""
    if provider == TtsProvider.ELEVENLABS:
        match = _ELEVENLABS_RE.match(voice)
        if match and (match.group("model") is None or match.group("model") in ELEVENLABS_MODELS):
            return match.group("id")
    return voice


def voice_find(provider: str, voice: str) -> Voice | None:
    base = voice_base(provider, voice)
    return next((v for v in VOICES.get(provider, ()) if v.id == base), None)


def voice_owner(voice: str) -> str | None:
    """The provider whose catalogue holds `voice`, if any."""
    for provider in VOICES:
        if voice_find(provider, voice) is not None:
            return provider
    return None


def voice_problem(*, provider: str, voice: str, language: str) -> str | None:
    """Why `voice` cannot be used with `provider` for `language` (None when it can)."""
    if not voice:
        return None
    found = voice_find(provider, voice)
    label = TtsProvider(provider).label
    if found is None:
        owner = voice_owner(voice)
        if owner is not None:
            return (f"{voice} is a {TtsProvider(owner).label} voice, not a {label} one: choose {owner} as the "
                    f"text-to-speech provider, or one of {label}'s voices.")
        match = _ELEVENLABS_RE.match(voice) if provider == TtsProvider.ELEVENLABS else None
        if match and voice_find(provider, match.group("id")) is not None:
            return (f"{voice}: the model after the voice id must be one of {', '.join(ELEVENLABS_MODELS)}, and the "
                    "tuning SPEED_STABILITY_SIMILARITY (e.g. 1.0_0.8_0.6).")
        return f"{voice} is not one of {label}'s voices. Choose one from the list: {voices_hint(provider)}."
    if found.language and language and language != MULTI and primary_language(found.language) != primary_language(language):
        return (f"{voice} speaks {found.language}, not {language}: choose a {label} voice for {language}, "
                "or an ElevenLabs voice (they speak every language).")
    return None


def speech_model_problem(*, provider: str, model: str) -> str | None:
    label = TranscriptionProvider(provider).label
    models_ = [m for m, _ in SPEECH_MODELS.get(provider, ())]
    if model and model not in models_:
        other = next((p for p, ms in SPEECH_MODELS.items() if p != provider and model in [m for m, _ in ms]), None)
        if other:
            return (f"{model} is a {TranscriptionProvider(other).label} speech model: choose {other} as the "
                    f"speech recognition provider, or one of {label}'s models ({', '.join(models_)}).")
        return f"{model} is not one of {label}'s speech models: choose {', '.join(models_)}."
    return None


def multi_problems(*, tts_provider: str, transcription_provider: str, speech_model: str) -> dict[str, str]:
    """What automatic language detection (`multi`) lacks, keyed tts_provider / transcription_provider /
    speech_model: Twilio needs ElevenLabs for speech, Deepgram with nova-2-general or nova-3-general to listen."""
    problems = {}
    if tts_provider != TtsProvider.ELEVENLABS:
        problems["tts_provider"] = "Automatic language detection (multi) needs ElevenLabs for text-to-speech."
    if transcription_provider != TranscriptionProvider.DEEPGRAM:
        problems["transcription_provider"] = "Automatic language detection (multi) needs Deepgram to recognise speech."
    elif speech_model and speech_model not in MULTI_SPEECH_MODELS:
        problems["speech_model"] = ("Automatic language detection (multi) needs the speech model "
                                    f"{' or '.join(MULTI_SPEECH_MODELS)}.")
    return problems


def voices_hint(provider: str) -> str:
    return ", ".join(v.id for v in VOICES.get(provider, ()))


def voice_choices() -> list[tuple[str, str]]:
    """Every catalogue voice as (id, "Provider: label") for a datalist."""
    return [(v.id, f"{TtsProvider(p).label}: {v.label}") for p, voices in VOICES.items() for v in voices]


def speech_model_choices() -> list[tuple[str, str]]:
    return [(m, f"{TranscriptionProvider(p).label}: {label}") for p, ms in SPEECH_MODELS.items() for m, label in ms]


# ---------------------------------------------------------------------------------------------------------------
# Agent providers: which transport each can run over and which settings it reads (calls/providers/*.py). Keyed by
# AgentVersion.Provider values; a provider not listed here is not checked.


@dataclass(frozen=True)
class ProviderNeeds:
    transports: tuple[str, ...]  # AgentVersion.Transport values it can run over
    secrets: tuple[str, ...] = ()  # environment secrets it requires
    optional: tuple[str, ...] = ()  # settings it reads when present
    why: str = ""  # why the other transport cannot carry it
    secrets_note: str = ""  # when the secrets depend on other choices (the cascaded stages)


MEDIA_STREAMS, CONVERSATION_RELAY = "media_streams", "conversation_relay"
# The providers whose replies a chat model writes: they take the version's chat vendor and model (options "chat").
CHAT_PROVIDERS = ("openai_chat", "cascaded")
TRANSPORT_LABELS = {MEDIA_STREAMS: "Media Streams", CONVERSATION_RELAY: "ConversationRelay"}

PROVIDER_NEEDS: dict[str, ProviderNeeds] = {
    "scripted": ProviderNeeds((MEDIA_STREAMS, CONVERSATION_RELAY)),
    "openai_realtime": ProviderNeeds(
        (MEDIA_STREAMS,), ("OPENAI_API_KEY",), ("OPENAI_REALTIME_MODEL", "OPENAI_REALTIME_PROTOCOL"),
        "it speaks and listens itself (audio in, audio out), and ConversationRelay exchanges text only"),
    # Its key is its chat vendor's (cascaded_secrets below): OPENAI_API_KEY, or ANTHROPIC_API_KEY for Anthropic.
    "openai_chat": ProviderNeeds(
        (CONVERSATION_RELAY,), (), ("OPENAI_CHAT_MODEL", "OPENAI_BASE_URL", "ANTHROPIC_CHAT_MODEL"),
        "it exchanges text only, and Media Streams carries raw audio",
        secrets_note="the key of the chat vendor chosen below (OPENAI_API_KEY or ANTHROPIC_API_KEY)"),
    # Its secrets depend on the vendors chosen per stage (cascaded_secrets below; the readiness check adds them).
    "cascaded": ProviderNeeds(
        (MEDIA_STREAMS,), (), ("OPENAI_BASE_URL", "OPENAI_CHAT_MODEL", "ANTHROPIC_CHAT_MODEL"),
        "it hears and speaks the raw audio itself (speech recognition, model, voice), and ConversationRelay "
        "exchanges text only",
        secrets_note="the key of each vendor chosen below (DEEPGRAM_API_KEY, ELEVENLABS_API_KEY, CARTESIA_API_KEY, "
                     "OPENAI_API_KEY or ANTHROPIC_API_KEY); none for the offline stages"),
}


def provider_needs_text(provider: str, label: str) -> str:
    """One line for the form: "OpenAI Realtime: Media Streams only; needs the secret OPENAI_API_KEY." """
    needs = PROVIDER_NEEDS.get(provider)
    if needs is None:
        return ""
    transports = " or ".join(TRANSPORT_LABELS.get(t, t) for t in needs.transports)
    text = f"{label}: {transports}{' only' if len(needs.transports) == 1 else ''}"
    if needs.secrets_note:
        text += f"; needs {needs.secrets_note}"
    else:
        text += f"; needs the secret {', '.join(needs.secrets)}" if needs.secrets else "; needs no secrets"
    if needs.optional:
        text += f" (optional: {', '.join(needs.optional)})"
    return text + "."


def provider_transport_problem(*, provider: str, label: str, transport: str) -> str | None:
    """Why `provider` cannot run over `transport` (None when it can)."""
    needs = PROVIDER_NEEDS.get(provider)
    if needs is None or not transport or transport in needs.transports:
        return None
    others = " or ".join(TRANSPORT_LABELS.get(t, t) for t in needs.transports)
    return (f"{label} cannot run over {TRANSPORT_LABELS.get(transport, transport)}: {needs.why}. Choose the "
            f"{others} transport, or another provider.")


# ---------------------------------------------------------------------------
# The cascaded Media Streams pipeline: a vendor per stage (calls/providers/speech/registry.py has the classes).


class SttVendor(models.TextChoices):
    OFFLINE = "offline", "Offline (pocketsphinx, no key)"
    DEEPGRAM = "deepgram", "Deepgram"
    OPENAI = "openai", "OpenAI"
    OPENAI_LOCAL = "openai_local", "OpenAI-compatible (local: your server at LOCAL_SPEECH_BASE_URL)"


class ChatVendor(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible (OPENAI_BASE_URL)"
    ANTHROPIC = "anthropic", "Anthropic"


class SpeechVendor(models.TextChoices):
    OFFLINE = "offline", "Offline (espeak-ng, no key)"
    DEEPGRAM = "deepgram", "Deepgram"
    ELEVENLABS = "elevenlabs", "ElevenLabs"
    CARTESIA = "cartesia", "Cartesia"
    OPENAI = "openai", "OpenAI"
    OPENAI_LOCAL = "openai_local", "OpenAI-compatible (local: your server at LOCAL_SPEECH_BASE_URL)"


class TurnPatience(models.TextChoices):
    """How long the cascaded agent lets a caller pause before answering (calls/providers/speech/turn.py)."""

    QUICK = "quick", "Quick: answers sooner, may cut in on a slow caller"
    NORMAL = "normal", "Normal: the turn model decides at each pause"
    PATIENT = "patient", "Patient: waits through long pauses (numbers, spelling)"
    SILENCE = "silence", "Silence only: no turn model, a fixed silence ends the turn"


# The environment secret each vendor's key lives in.
VENDOR_SECRETS = {"deepgram": "DEEPGRAM_API_KEY", "openai": "OPENAI_API_KEY", "elevenlabs": "ELEVENLABS_API_KEY",
                  "cartesia": "CARTESIA_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


# The base URL each vendor's client connects to (a secret or variable of the environment; tests point them at local
# fakes): every name ending in _BASE_URL is checked by the outbound guard when saved.
VENDOR_BASE_URLS = tuple(f"{name.removesuffix('_API_KEY')}_BASE_URL" for name in VENDOR_SECRETS.values())
BASE_URL_SUFFIX = "_BASE_URL"


def is_base_url_setting(name: str) -> bool:
    return (name or "").upper().endswith(BASE_URL_SUFFIX)


def cascaded_secrets(*, provider: str, stt_vendor: str, chat_vendor: str, tts_vendor: str) -> list[str]:
    """The vendor keys a version needs from its environment (its readiness), in stage order: a cascaded version's
    three stages, a chat version's (`openai_chat`) chat vendor (ANTHROPIC_API_KEY when it is Anthropic)."""
    if provider not in CHAT_PROVIDERS:
        return []
    chat = chat_vendor or ChatVendor.OPENAI
    vendors = (stt_vendor or SttVendor.OFFLINE, chat, tts_vendor or SpeechVendor.OFFLINE) \
        if provider == "cascaded" else (chat,)
    return list(dict.fromkeys(VENDOR_SECRETS[v] for v in vendors if v in VENDOR_SECRETS))
