"""Every client that uses a URL from an environment secret or variable goes through the outbound guard, in
production settings (no private targets, https only): the live call's chat models (OpenAI-compatible, Anthropic),
the Realtime websocket, every speech stage and the post-call analysis refuse loopback, the cloud metadata address
and a name that resolves to loopback; the Anthropic SDK connects only to the address that was checked (a DNS
answer that changes after the check, rebinding, reaches nothing)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from calls.engine.context import CallContext
from calls.providers.base import ProviderConfigError
from calls.providers.chat import ChatError
from calls.providers.chat.anthropic import AnthropicChat
from calls.providers.chat.openai import OpenAIChat
from calls.providers.openai_realtime import OpenAIRealtimeProvider
from calls.providers.speech.base import SpeechConfigError, SpeechSettings
from calls.services import analysis
from tests.calls.speech.test_vendor_stages import STAGES, _open
from tests.fakes.anthropic import FakeAnthropic

LOOPBACK_NAME = "canary-loopback.callwell.test"
TARGETS = {
    "loopback": "https://127.0.0.1:8443/v1",
    "metadata": "https://169.254.169.254/latest",
    "name-to-loopback": f"https://{LOOPBACK_NAME}/v1",
}
KEY = "k-secret-value-31"


@pytest.fixture
def production(settings, monkeypatch):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    settings.OUTBOUND_ALLOW_HTTP = False
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in (LOOPBACK_NAME, LOOPBACK_NAME.encode()):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return settings


def _refused(exc: BaseException) -> None:
    text = str(exc)
    assert "refused" in text and KEY not in text, text


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_openai_chat_model_refuses_a_private_base_url(production, target):
    with pytest.raises(ProviderConfigError) as info:
        asyncio.run(OpenAIChat(api_key=KEY, base_url=TARGETS[target]).open())
    _refused(info.value)


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_anthropic_chat_model_refuses_a_private_base_url(production, target):
    with pytest.raises(ProviderConfigError) as info:
        asyncio.run(AnthropicChat(api_key=KEY, base_url=TARGETS[target]).open())
    _refused(info.value)


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_realtime_websocket_refuses_a_private_base_url(production, target):
    ctx = CallContext(transport="media_streams", provider="openai_realtime",
                      secrets={"OPENAI_API_KEY": KEY}, variables={"OPENAI_BASE_URL": TARGETS[target]})
    with pytest.raises(ProviderConfigError) as info:
        asyncio.run(OpenAIRealtimeProvider(ctx).start())
    _refused(info.value)


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("cls", list(STAGES), ids=lambda c: c.__name__)
def test_every_speech_stage_refuses_a_private_base_url(production, cls, target):
    with pytest.raises(SpeechConfigError) as info:
        asyncio.run(_open(cls(SpeechSettings(api_key=KEY, base_url=TARGETS[target]))))
    _refused(info.value)


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("vendor", ["OPENAI", "ANTHROPIC"])
def test_the_analysis_refuses_a_private_base_url(production, vendor, target):
    answer = analysis._anthropic_answer if vendor == "ANTHROPIC" else analysis._openai_answer
    env = {f"{vendor}_API_KEY": KEY, f"{vendor}_BASE_URL": TARGETS[target]}
    with pytest.raises(analysis.PermanentAnalysisError) as info:
        answer(env_values=env, system="s", user="u", schema={"type": "object"})
    _refused(info.value)


@pytest.fixture
def rebinding(settings, monkeypatch):
    """A name that resolves to a public address when checked, then to loopback (where the fake listens)."""
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    settings.OUTBOUND_ALLOW_HTTP = True  # the fake speaks plain HTTP; the address check is what is tested
    real = socket.getaddrinfo
    answers = {"n": 0}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ("rebind.callwell.test", b"rebind.callwell.test"):  # anyio passes the IDNA-encoded bytes
            answers["n"] += 1
            address = "93.184.216.34" if answers["n"] == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_the_anthropic_chat_model_connects_only_to_the_checked_address(rebinding):
    with FakeAnthropic() as fake:
        port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
        chat = AnthropicChat(api_key=fake.api_key, base_url=f"http://rebind.callwell.test:{port}")

        async def scenario():
            try:
                return [item async for item in chat.stream([{"role": "user", "content": "hi"}])]
            finally:
                await chat.close()

        with pytest.raises(ChatError) as info:
            asyncio.run(scenario())
        assert info.value.reason == "connection" and not info.value.permanent
        assert fake.bodies == [] and rebinding["n"] >= 2  # checked, then refused at connect: the key went nowhere


def test_the_anthropic_analysis_connects_only_to_the_checked_address(rebinding):
    with FakeAnthropic() as fake:
        port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
        env = {"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": f"http://rebind.callwell.test:{port}"}
        with pytest.raises(analysis.AnalysisError):
            analysis._anthropic_answer(env_values=env, system="s", user="u", schema={"type": "object"})
        assert fake.bodies == [] and rebinding["n"] >= 2
