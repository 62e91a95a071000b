"""The Anthropic chat model (streamed text and tool calls) and its text provider, through the official anthropic
SDK pointed at a local fake of the Messages streaming API."""
from __future__ import annotations

import asyncio
import json

import pytest

from calls.engine.context import CallContext, HandoverActionSpec
from calls.engine.events import Handover, Hangup, ProviderFailed, ReplyDone, TextOut, Transcript
from calls.providers.base import ProviderConfigError
from calls.providers.chat import ChatError
from calls.providers.chat.anthropic import AnthropicChat, anthropic_request
from calls.providers.text_chat import ChatProvider
from tests.calls.speech.conftest import run
from tests.conditions import CEILING
from tests.fakes.anthropic import FakeAnthropic

TOOLS = [{"type": "function", "function": {"name": "transfer_to_sales", "description": "Transfer to sales.",
                                           "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


async def collect(chat, messages, **kw):
    try:
        return [item async for item in chat.stream(messages, **kw)]
    finally:
        await chat.close()


def test_a_reply_streams_text_deltas_then_the_completed_tool_call(fake):
    chat = AnthropicChat(api_key=fake.api_key, base_url=fake.base_url, model="claude-test")
    items = run(collect(chat, [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "I want sales"}], tools=TOOLS))
    assert items[:4] == ["Transferring ", "you ", "to ", "sales."]
    assert items[4]["name"] == "transfer_to_sales" and items[4]["id"] == "toolu_01"
    assert json.loads(items[4]["arguments"]) == {"reason": "the caller asked"}
    body = fake.bodies[0]
    assert body["stream"] is True and body["model"] == "claude-test" and body["system"] == "Be brief."
    assert body["tools"] == [{"name": "transfer_to_sales", "description": "Transfer to sales.",
                              "input_schema": {"type": "object", "properties": {}}}]
    assert fake.requests[0][2]["Authorization"] == f"Bearer {fake.api_key}" and fake.requests[0][2]["anthropic-version"]


def test_openai_shaped_history_becomes_anthropic_turns():
    request = anthropic_request([
        {"role": "system", "content": "Rules."},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "sales please"},
        {"role": "assistant", "content": "Transferring.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "transfer_to_sales", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "unknown action"},
        {"role": "system", "content": "Instruction from your supervisor: be kind."},
    ])
    assert request["system"] == "Rules.\n\nInstruction from your supervisor: be kind."
    roles = [t["role"] for t in request["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # a first assistant turn gets a user turn
    assert request["messages"][3]["content"][1] == {"type": "tool_use", "id": "toolu_1",
                                                    "name": "transfer_to_sales", "input": {}}
    assert request["messages"][4]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                  "content": "unknown action"}]


@pytest.mark.parametrize("status,permanent", [(401, True), (404, True), (500, False), (529, False)])
def test_refusals_are_permanent_and_server_errors_transient(fake, status, permanent):
    if status == 401:
        chat = AnthropicChat(api_key="sk-ant-wrong", base_url=fake.base_url)
    else:
        fake.status = status
        chat = AnthropicChat(api_key=fake.api_key, base_url=fake.base_url)
    with pytest.raises(ChatError) as info:
        run(collect(chat, [{"role": "user", "content": "hello"}]))
    assert info.value.permanent is permanent and info.value.status == status
    assert "sk-ant" not in str(info.value)


def test_an_overload_mid_stream_is_transient_after_the_text_so_far(fake):
    chat = AnthropicChat(api_key=fake.api_key, base_url=fake.base_url)
    got = []

    async def scenario():
        async for item in chat.stream([{"role": "user", "content": "overloaded?"}]):
            got.append(item)

    with pytest.raises(ChatError) as info:
        run(scenario())
    assert got == ["Let me "] and not info.value.permanent and "overloaded_error" in str(info.value)


def test_a_missing_key_names_the_secret():
    with pytest.raises(ProviderConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicChat(api_key="")


def test_a_refused_base_url_is_a_config_error(settings, fake):
    settings.OUTBOUND_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ProviderConfigError, match="base URL is refused"):
        run(AnthropicChat(api_key=fake.api_key, base_url=fake.base_url).open())


def _ctx(fake, **kw):
    return CallContext(transport="text", provider="openai_chat", speech={"chat_vendor": "anthropic"}, greeting="Hello, how can I help?",
                       instructions="You answer for Acme.",
                       actions=(HandoverActionSpec("transfer_to_sales", "+31201234567", "Transfer to sales."),),
                       secrets={"ANTHROPIC_API_KEY": fake.api_key},
                       variables={"ANTHROPIC_BASE_URL": fake.base_url, **kw})


async def events_until(provider, predicate, timeout=CEILING):
    seen = []
    while True:
        event = await asyncio.wait_for(provider.events.get(), timeout)
        seen.append(event)
        if predicate(event):
            return seen


def test_the_text_provider_greets_streams_and_hands_over(fake):
    async def scenario():
        provider = ChatProvider(_ctx(fake))
        await provider.start()
        greeting = await events_until(provider, lambda e: isinstance(e, Transcript))
        await provider.on_text("I want to talk to sales")
        reply = await events_until(provider, lambda e: isinstance(e, Handover))
        await provider.on_tool_result(reply[-1].call_id, "That action is not available.")
        again = await events_until(provider, lambda e: isinstance(e, Transcript) and e.role == "agent")
        await provider.on_text("bye")
        bye = await events_until(provider, lambda e: isinstance(e, Hangup))
        await provider.close()
        return greeting, reply, again, bye

    greeting, reply, again, bye = run(scenario())
    assert greeting[0] == TextOut("Hello, how can I help?", last=True)
    tokens = "".join(e.token for e in reply if isinstance(e, TextOut))
    assert tokens == "Transferring you to sales." and ReplyDone("turn-1") in reply
    assert Transcript("agent", "Transferring you to sales.") in reply and reply[-1].action_name == "transfer_to_sales"
    second = fake.bodies[1]
    assert "You answer for Acme." in second["system"] and second["tools"][0]["name"] == "transfer_to_sales"
    assert second["messages"][-1]["content"][-1]["type"] == "tool_result"
    assert any(e == Hangup("agent") for e in bye)


def test_the_text_provider_reports_a_refused_key_as_a_provider_failure(fake):
    async def scenario():
        provider = ChatProvider(_ctx(fake))
        fake.api_key = "sk-ant-rotated"
        await provider.start()
        await provider.on_text("hello")
        seen = await events_until(provider, lambda e: isinstance(e, ProviderFailed))
        await provider.close()
        return seen[-1]

    assert run(scenario()) == ProviderFailed("http_error", {"status": 401})


def test_the_text_provider_without_a_key_is_a_config_error(fake):
    ctx = CallContext(transport="text", provider="openai_chat", speech={"chat_vendor": "anthropic"})
    with pytest.raises(ProviderConfigError, match="ANTHROPIC_API_KEY"):
        run(ChatProvider(ctx).start())


def test_no_key_reaches_the_logs_even_at_debug_level(fake, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    run(collect(AnthropicChat(api_key=fake.api_key, base_url=fake.base_url), [{"role": "user", "content": "hi"}]))
    assert caplog.records and fake.api_key not in caplog.text
