"""ConversationRelay over a real websocket: signed handshake, setup, prompts, interrupts, handovers via `end`."""
import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from calls.models import CallHandover, CallTurn
from tests.conditions import CEILING

from .conftest import eventually, make_call_setup, run

pytestmark = pytest.mark.django_db(transaction=True)

RELAY_URL = "wss://calls.example.test/v1/stream/relay"


class RelayClient:
    def __init__(self, ws):
        self.ws = ws
        self.received = []

    async def send(self, msg):
        await self.ws.send(json.dumps(msg))

    async def setup(self, *, token, call_sid, account_sid=""):
        await self.send({"type": "setup", "sessionId": "VX" + "1" * 32, "callSid": call_sid, "accountSid": account_sid,
                         "from": "+15125550199", "to": "+15125550100", "direction": "inbound",
                         "customParameters": {"session": token}})

    async def prompt(self, text):
        await self.send({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True})

    async def read_until(self, predicate, timeout=CEILING):
        async def loop():
            while True:
                msg = json.loads(await self.ws.recv())
                self.received.append(msg)
                if predicate(msg):
                    return msg
        return await asyncio.wait_for(loop(), timeout)

    async def reply(self, timeout=CEILING) -> str:
        """The text of one reply (tokens until last=True)."""
        tokens = []
        while True:
            msg = await self.read_until(lambda m: m.get("type") in ("text", "end"), timeout)
            if msg["type"] == "end":
                raise AssertionError(f"session ended: {msg}")
            tokens.append(msg["token"])
            if msg["last"]:
                return "".join(tokens)

    async def closed(self, timeout=CEILING):
        try:
            while True:
                self.received.append(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


def relay_connect(server, setup, signature=None):
    headers = {"X-Twilio-Signature": signature if signature is not None else setup.sign(RELAY_URL)}
    return connect(server.ws_base + "/v1/stream/relay", additional_headers=headers)


def test_handshake_without_signature_is_refused(asgi_server):
    async def scenario():
        with pytest.raises(InvalidStatus) as info:
            async with connect(asgi_server.ws_base + "/v1/stream/relay"):
                pass
        return info.value.response.status_code

    assert run(scenario()) == 403


def test_forged_signature_is_closed_at_setup(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup, signature="bm90IGEgc2lnbmF0dXJl") as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            return await client.closed()

    assert run(scenario()) == 4403


@pytest.mark.parametrize("first", [{"type": "prompt", "voicePrompt": "hi", "last": True}, "not json"])
def test_messages_before_setup_close_the_socket(asgi_server, twilio_sandbox, first):
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            await ws.send(first if isinstance(first, str) else json.dumps(first))
            return await RelayClient(ws).closed()

    assert run(scenario()) == 4400


def test_scripted_relay_answers_and_hands_over_with_end(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            greeting = await client.reply()
            await client.prompt("When are you open?")
            answer = await client.reply()
            await client.send({"type": "interrupt", "utteranceUntilInterrupt": "We are open",
                               "durationUntilInterruptMs": "800"})
            await client.send({"type": "bogus"})
            await client.prompt("I want to talk to sales please")
            end = await client.read_until(lambda m: m.get("type") == "end")
            await client.closed()
            return greeting, answer, end

    greeting, answer, end = run(scenario())
    assert greeting == "Hello, this is Ava."
    assert answer == "We are open nine to five."
    data = json.loads(end["handoffData"])
    handover = CallHandover.objects.get()
    assert data == {"reason": "handover", "action": "transfer_to_sales", "handover_id": handover.pk}
    assert (handover.transport, handover.destination) == ("conversation_relay", "+31201234567")
    turns = list(CallTurn.objects.filter(call_session=session).values_list("role", "text"))
    assert ("caller", "When are you open?") in turns


def test_replayed_setup_token_is_refused(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            await client.reply()
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            return await client.closed()

    assert run(scenario()) == 4403


def chat_setup(sandbox, fake, **variables):
    return make_call_setup(sandbox=sandbox, transport="conversation_relay", provider="openai_chat",
                           secrets_={"OPENAI_API_KEY": fake.api_key},
                           variables={"OPENAI_BASE_URL": fake.base_url, "OPENAI_CHAT_MODEL": "fake-chat", **variables})


def test_chat_provider_streams_tokens_interrupts_and_calls_tools(asgi_server, twilio_sandbox, fake_chat):
    setup = chat_setup(twilio_sandbox, fake_chat)
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            assert await client.reply() == "Hello, this is Ava."
            await client.prompt("hello there")
            echo = await client.reply()
            await client.prompt("please be slow")
            await client.read_until(lambda m: m.get("type") == "text")  # the reply has started
            await client.send({"type": "interrupt", "utteranceUntilInterrupt": "word0 word1",
                               "durationUntilInterruptMs": "600"})
            await client.prompt("connect me to sales")
            end = await client.read_until(lambda m: m.get("type") == "end")
            await client.closed()
            return echo, end

    echo, end = run(scenario())
    assert echo == "Echo: hello there "
    headers, body = fake_chat.requests[0]
    assert headers["Authorization"] == f"Bearer {fake_chat.api_key}"
    assert body["model"] == "fake-chat" and body["stream"] is True
    assert {t["function"]["name"] for t in body["tools"]} == {"transfer_to_sales", "transfer_to_support", "end_call"}
    # After the interrupt the model's history holds only what the caller heard.
    last_messages = fake_chat.requests[-1][1]["messages"]
    assert {"role": "assistant", "content": "word0 word1"} in last_messages
    assert not any(m.get("content", "") and "word39" in (m.get("content") or "") for m in last_messages)
    assert json.loads(end["handoffData"])["action"] == "transfer_to_sales"
    assert CallHandover.objects.get().action_name == "transfer_to_sales"


@pytest.mark.parametrize("failure", ["http500", "timeout", "no-key"])
def test_chat_provider_failure_apologises_and_ends_with_error(asgi_server, twilio_sandbox, fake_chat, failure):
    variables = {"OPENAI_TIMEOUT": "0.5"}
    setup = chat_setup(twilio_sandbox, fake_chat, **variables)
    if failure == "no-key":
        setup.environment.secrets.all().delete()
    if failure == "http500":
        fake_chat.status = 500
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            if failure != "no-key":
                await client.reply()
                await client.prompt("please hang" if failure == "timeout" else "hello")
            await client.read_until(lambda m: m.get("type") == "end")
            await client.closed()
            return client.received

    received = run(scenario())
    end_at = next(i for i, m in enumerate(received) if m.get("type") == "end")
    assert json.loads(received[end_at]["handoffData"])["reason"] == "error"
    # Never dead air: the caller heard an apology right before the session ended.
    assert received[end_at - 1] == {"type": "text", "token": "Sorry, something went wrong on our side.",
                                    "last": True, "interruptible": False}


def test_interrupt_after_the_reply_was_streamed_cuts_the_history_to_what_was_heard(asgi_server, twilio_sandbox,
                                                                                   fake_chat):
    """Twilio speaks slower than tokens arrive: the interrupt usually comes after the whole reply was sent."""
    setup = chat_setup(twilio_sandbox, fake_chat)
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            await client.reply()
            await client.prompt("tell me about your products")
            assert await client.reply() == "Echo: tell me about your products "
            await client.send({"type": "interrupt", "utteranceUntilInterrupt": "Echo: tell me",
                               "durationUntilInterruptMs": "900"})
            await client.prompt("ok")
            await client.reply()
            await ws.close()

    run(scenario())
    messages = fake_chat.requests[-1][1]["messages"]
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    assert assistant == ["Hello, this is Ava.", "Echo: tell me"]
    assert eventually(lambda: CallTurn.objects.filter(call_session=session, role="agent", heard=False,
                                                      text="Echo: tell me").exists())
    # One copy of the reply, cut where the caller stopped hearing it (not the whole reply as heard plus the cut).
    agent = list(CallTurn.objects.filter(call_session=session, role="agent").order_by("seq").values_list("text", "heard"))
    assert agent[:2] == [("Hello, this is Ava.", True), ("Echo: tell me", False)], agent
    assert not any(text.startswith("Echo: tell me about") for text, _ in agent), agent


def test_webhook_to_relay_to_handoff_dials_the_destination(asgi_server, twilio_sandbox, client):
    """End to end over ConversationRelay: signed webhook → <Connect action><ConversationRelay> → signed relay
    socket → the agent picks transfer_to_sales → `end` → Twilio requests the action URL → <Dial> to +31201234567."""
    import re

    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    call_sid = "CA" + "7" * 32
    base = "https://calls.example.test"
    url = f"{base}/v1/agents/{setup.connector.identifier}/twilio-config"
    params = {"CallSid": call_sid, "AccountSid": setup.connection.account_sid, "From": "+15125550199",
              "To": "+15125550100", "CallStatus": "ringing"}
    twiml = client.post(url.removeprefix(base), params, HTTP_X_TWILIO_SIGNATURE=setup.sign(url, params)).content.decode()
    assert re.search(r'<ConversationRelay [^>]*url="wss://calls.example.test/v1/stream/relay"', twiml)
    assert "welcomeGreeting" not in twiml
    action = re.search(r'<Connect action="([^"]+)"', twiml).group(1)
    token = re.search(r'<Parameter name="session" value="([^"]+)"', twiml).group(1)

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            relay = RelayClient(ws)
            await relay.setup(token=token, call_sid=call_sid, account_sid=setup.connection.account_sid)
            # The greeting is said once: by our runtime, not also by Twilio (no welcomeGreeting in the TwiML).
            assert await relay.reply() == "Hello, this is Ava."
            await relay.prompt("Sales, please.")
            end = await relay.read_until(lambda m: m.get("type") == "end")
            await relay.closed()
            return end

    end = run(scenario())
    handoff = {"CallSid": call_sid, "AccountSid": setup.connection.account_sid, "HandoffData": end["handoffData"]}
    answer = client.post(action.removeprefix(base), handoff, HTTP_X_TWILIO_SIGNATURE=setup.sign(action, handoff))
    assert answer.status_code == 200
    assert "<Dial" in answer.content.decode() and "<Number>+31201234567</Number></Dial>" in answer.content.decode()
    assert CallHandover.objects.get(call_session__call_sid=call_sid).destination == "+31201234567"


def test_scripted_answer_with_audio_sends_play(asgi_server, twilio_sandbox):
    """ConversationRelay's `play`: a scripted answer may carry an audio URL that Twilio plays after the words."""
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    setup.version.scripted_answers = [{"keywords": ["jingle"], "answer": "Here is our jingle.",
                                       "play": "https://cdn.example.test/jingle.mp3"}]
    setup.version.save()
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            await client.reply()
            await client.prompt("play the jingle")
            answer = await client.reply()
            play = await client.read_until(lambda m: m.get("type") == "play")
            return answer, play

    answer, play = run(scenario())
    assert answer == "Here is our jingle."
    # No interruptible/preemptible flags: the version's TwiML attributes govern (a message's flags override them).
    assert play == {"type": "play", "source": "https://cdn.example.test/jingle.mp3", "loop": 1}
    assert eventually(lambda: CallTurn.objects.filter(
        call_session=session, role="agent", text="(played https://cdn.example.test/jingle.mp3)").exists())


@pytest.mark.parametrize("greeting,replies,flag", [
    ("", "", None),  # no options: Twilio's defaults (any) for both, no per-token flag
    ("none", "", False),  # the greeting cannot be interrupted, replies can (the TwiML attribute)
    ("any", "none", True),
    ("speech", "speech", None),  # the same as the replies: the TwiML attribute covers it
])
def test_greeting_tokens_carry_the_versions_greeting_interruptibility(asgi_server, twilio_sandbox, greeting,
                                                                       replies, flag):
    """Twilio's welcomeGreetingInterruptible governs only its own welcomeGreeting, which we do not send (the agent
    greets): the greeting's text tokens carry the version's setting as the boolean flag, replies carry none so the
    version's `interruptible` TwiML attribute decides for them."""
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay")
    setup.version.relay_welcome_greeting_interruptible = greeting
    setup.version.relay_interruptible = replies
    setup.version.save()
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            greeting_text = await client.reply()
            first_reply = len(client.received)
            await client.prompt("when are you open")
            answer = await client.reply()
            return greeting_text, answer, client.received[:first_reply], client.received[first_reply:]

    greeting_text, answer, greeting_msgs, reply_msgs = run(scenario())
    assert greeting_text == "Hello, this is Ava." and answer == "We are open nine to five."
    greeting_tokens = [m for m in greeting_msgs if m["type"] == "text"]
    assert greeting_tokens and all(m.get("interruptible") == flag for m in greeting_tokens)
    if flag is None:
        assert all("interruptible" not in m for m in greeting_tokens)
    reply_tokens = [m for m in reply_msgs if m["type"] == "text"]
    assert reply_tokens and all("interruptible" not in m and "preemptible" not in m for m in reply_tokens)
