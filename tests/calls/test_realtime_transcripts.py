"""Media Streams with the OpenAI Realtime provider (local fake): the provider's transcription events become stored
turns as the call goes, and a supervisor's instruction reaches the model as new session instructions."""
import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from calls.engine import live
from calls.models import CallIntervention, CallTurn
from tests.conditions import until
from tests.fakes.openai_realtime import FakeRealtimeServer

from .conftest import Reader, TwilioMediaClient, browser_ws, cookie_for, make_call_setup, member_of, run

pytestmark = pytest.mark.django_db(transaction=True)


class TranscribingFake(FakeRealtimeServer):
    """After its greeting, reports what the caller said (input audio transcription), as Realtime does."""

    async def _audio_reply(self, ws, item_id):
        await super()._audio_reply(ws, item_id)
        await ws.send(json.dumps({"type": "conversation.item.input_audio_transcription.completed",
                                  "item_id": "item_user", "content_index": 0,
                                  "transcript": "I would like to change my booking."}))


@pytest.fixture
def fake():
    server = TranscribingFake().start()
    yield server
    server.stop()


def test_realtime_transcripts_are_stored_and_instructions_reach_the_model(asgi_server, twilio_sandbox, fake):
    setup = make_call_setup(sandbox=twilio_sandbox, provider="openai_realtime",
                            secrets_={"OPENAI_API_KEY": fake.api_key},
                            variables={"OPENAI_BASE_URL": fake.base_url})
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)
    user = member_of(setup.workspace)
    cookie = cookie_for(user)

    def stored():
        return list(CallTurn.objects.filter(call_session=session).order_by("seq").values_list("role", "text"))

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            # Stored while the call is still open.
            await until(lambda: asyncio.to_thread(lambda: len(stored()) >= 2), what="two turns stored")
            during = await asyncio.to_thread(stored)
            await until(lambda: live.get(session.pk) is not None, what="the call registered")
            async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
                reader = Reader(listen)
                await reader.until(lambda m: m["kind"] == "hello")
                await listen.send(json.dumps({"type": "instruction", "text": "Offer the Friday slot."}))
                reply = await reader.until(lambda m: m["kind"] == "intervention")
                await until(lambda: sum(e["type"] == "session.update" for e in fake.events) >= 2,
                            what="the instruction reached the model")
            await twilio.stop()
            return during, reply

    during, reply = run(scenario())
    assert during == [("agent", "Hello from the fake model."), ("caller", "I would like to change my booking.")]
    assert reply["ok"] is True
    updates = [e for e in fake.events if e["type"] == "session.update"]
    assert len(updates) == 2  # the start, then the instruction
    assert "Instruction from your supervisor, follow it from now on: Offer the Friday slot." in \
        updates[-1]["session"]["instructions"]
    assert CallIntervention.objects.get(call_session=session).detail == "Offer the Friday slot."


def test_chat_provider_sends_the_instruction_with_its_next_request():
    from calls.engine.context import CallContext
    from calls.providers.text_chat import ChatProvider as OpenAIChatProvider

    provider = OpenAIChatProvider(CallContext(transport="conversation_relay", provider="openai_chat",
                                              instructions="Help callers."))
    asyncio.run(provider.on_instruction("Be brief."))
    assert provider.messages[-1] == {"role": "system",
                                     "content": "Instruction from your supervisor, follow it from now on: Be brief."}
    assert provider.system_prompt().endswith("Instruction from your supervisor, follow it from now on: Be brief.")
