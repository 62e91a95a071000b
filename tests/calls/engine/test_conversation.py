"""One conversation for every provider: a tool call means the same thing whoever made it (an API action runs and
its result is spoken; a handover action hands over; end_call hangs up), with any chat vendor."""
from __future__ import annotations

import asyncio

import pytest

from calls.engine.context import CallContext, HandoverActionSpec
from calls.engine.engine import call_open
from calls.engine.events import Handover, Hangup, RunAction
from calls.providers.cascaded import CascadedProvider
from calls.providers.chat import anthropic as _anthropic_sdk  # noqa: F401 - imported once, not on the call's clock
from calls.providers.conversation import Conversation
from calls.providers.speech.vad import VoiceActivity
from calls.providers.text_chat import ChatProvider
from tests.conditions import until
from tests.fakes.action_api import FakeActionApi
from tests.fakes.anthropic import FakeAnthropic

from .test_api_actions import ORDER
from .test_cascaded import ListChat, ScriptedSTT, ToneTTS


@pytest.fixture
def api():
    fake = FakeActionApi().start()
    yield fake
    fake.stop()


def test_a_tool_call_means_one_thing_for_every_provider():
    ctx = CallContext(transport="media_streams", provider="cascaded", api_actions=(ORDER,),
                      actions=(HandoverActionSpec("transfer_to_sales", "+31201234567"),))
    conversation = Conversation(ctx)
    assert conversation.tool_event("order_status", "c1", '{"order_id": "1"}') == RunAction("order_status", "c1",
                                                                                          '{"order_id": "1"}')
    assert conversation.tool_event("transfer_to_sales", "c2") == Handover("transfer_to_sales", "c2")
    assert conversation.tool_event("end_call", "c3") == Hangup("agent")
    events, waiting = conversation.reply_events("", [{"id": "c1", "name": "order_status", "arguments": "{}"},
                                                     {"id": "c3", "name": "end_call", "arguments": ""}])
    assert [type(e) for e in events] == [RunAction, Hangup] and waiting == {"c1"}
    assert conversation.messages[-1] == {"role": "tool", "tool_call_id": "c3", "content": "ok"}


def test_a_cascaded_agent_runs_an_api_action_and_speaks_its_result(api):
    ctx = CallContext(transport="media_streams", provider="cascaded", greeting="", instructions="Be brief.",
                      api_actions=(ORDER,), variables={"API_BASE": api.url})
    chat = ListChat([[{"id": "call_1", "name": "order_status", "arguments": '{"order_id": "42"}'}],
                     ["Your order is ", "shipped."]])
    tts = ToneTTS()
    provider = CascadedProvider(ctx, stt=ScriptedSTT([]), tts=tts, chat=chat, voice_activity=VoiceActivity())
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    async def scenario():
        call = call_open("media_streams", ctx, send, stream_sid="MZ1", provider=provider)
        call.start()
        await until(lambda: provider.pipeline is not None)
        await call.handle({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "4"}})
        await until(lambda: "Your order is shipped." in tts.spoken)
        await until(lambda: any(t[1] == "Your order is shipped." for t in call.turns))
        await call.close()
        return call

    call = asyncio.run(scenario())
    assert api.requests[0][1] == "/orders/42"
    assert call.action_runs[0]["name"] == "order_status" and call.action_runs[0]["ok"]
    # The model got the action's result as the tool's answer (not "There is no handover action named ...").
    tool = chat.requests[1][-1]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}
    assert not call.handovers
    assert any(m.get("event") == "media" for m in sent)


def test_the_anthropic_chat_vendor_over_conversation_relay_runs_an_api_action(api):
    with FakeAnthropic() as anthropic:
        ctx = CallContext(transport="conversation_relay", provider="openai_chat", greeting="Hello!",
                          speech={"chat_vendor": "anthropic", "chat_model": "claude-test"}, api_actions=(ORDER,),
                          secrets={"ANTHROPIC_API_KEY": anthropic.api_key},
                          variables={"ANTHROPIC_BASE_URL": anthropic.base_url, "API_BASE": api.url})
        sent: list[dict] = []

        async def send(msg):
            sent.append(msg)

        def said() -> str:
            return "".join(m.get("token", "") for m in sent if m.get("type") == "text")

        async def scenario():
            call = call_open("conversation_relay", ctx, send)
            assert isinstance(call.provider, ChatProvider) and call.provider.vendor == "anthropic"
            call.start()
            await until(lambda: "Hello!" in said())
            await call.handle({"type": "prompt", "voicePrompt": "Where is my order?", "last": True})
            await until(lambda: "Your order is shipped." in said())
            await call.close()
            return call

        call = asyncio.run(scenario())
        assert api.requests[0][1] == "/orders/42"
        assert "One moment, I'm looking that up." in said()  # the wait message, said for the model
        assert call.action_runs[0]["ok"] and not call.handovers
        assert anthropic.bodies[0]["model"] == "claude-test"
        assert anthropic.bodies[1]["messages"][-1]["content"][-1] == {
            "type": "tool_result", "tool_use_id": "toolu_00", "content": "shipped"}
