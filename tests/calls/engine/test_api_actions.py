"""API actions during a call: the model (or a scripted rule) asks, the engine runs the request in a task of its
own, the answer goes back as the tool result; each run is recorded; no secret reaches transcript or model."""
import asyncio
import json
import logging

import pytest

from agents.action_requests import ApiActionSpec
from agents.models import ApiAction, AuthConnector
from calls.engine.context import CallContext
from calls.engine.engine import call_open
from calls.models import CallActionRun, CallTurn
from tests.conditions import until
from tests.fakes.action_api import FakeActionApi

from .conftest import eventually, make_call_setup, run
from .test_relay import RelayClient, relay_connect

ORDER = ApiActionSpec(name="order_status", description="Look up an order's status.", url="{API_BASE}/orders/{order_id}",
                      parameters=({"name": "order_id", "type": "string", "required": True},),
                      result_pointer="/order/status", wait_message="One moment, I'm looking that up.")


@pytest.fixture
def api():
    fake = FakeActionApi().start()
    yield fake
    fake.stop()


def _ctx(api, **kw) -> CallContext:
    base = dict(transport="text", provider="scripted", greeting="",
                scripted_answers=({"keywords": ["price"], "answer": "It costs ten euros."},),
                handover_rules=({"keyword": "order", "digit": "2", "action": "order_status",
                                 "parameters": {"order_id": "42"}, "say": "Your order is {result}."},
                                {"keyword": "slow", "action": "slow_thing", "say": "Done: {result}",
                                 "field": "/late"}),
                api_actions=(ORDER, ApiActionSpec(name="slow_thing", url="{API_BASE}/slow", timeout_seconds=15)),
                variables={"API_BASE": api.url}, secrets={"SOME_SECRET": "env-secret-value-77"})
    base.update(kw)
    return CallContext(**base)


async def _collect(engine, sent, condition):
    await until(lambda: condition(sent), what="the messages expected")


def test_a_scripted_rule_runs_the_action_and_speaks_a_field_of_the_answer(api):
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    async def scenario():
        engine = call_open("text", _ctx(api), send)
        engine.start()
        await engine.handle({"type": "message", "text": "where is my order"})
        await _collect(engine, sent, lambda s: any(m.get("text") == "Your order is shipped." for m in s))
        await engine.handle({"type": "dtmf", "digit": "2"})
        await _collect(engine, sent, lambda s: sum(m.get("type") == "action" for m in s) == 2)
        await engine.close()
        return engine

    engine = run(scenario())
    action = next(m for m in sent if m["type"] == "action")
    assert action["name"] == "order_status" and action["ok"] and action["status_code"] == 200
    assert action["parameters"] == {"order_id": "42"} and action["result"] == "shipped"
    assert api.requests[0][1] == "/orders/42"
    # The wait message is said while the request runs; the run is in the transcript.
    turns = [t[1] for t in engine.turns]
    assert "One moment, I'm looking that up." in turns
    assert any(t.startswith("Action order_status: 200,") for t in turns)


def test_a_slow_action_does_not_block_the_conversation(api):
    api.slow_seconds = 60  # the API answers only when released, after the next reply
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    async def scenario():
        engine = call_open("text", _ctx(api), send)
        engine.start()
        await engine.handle({"type": "message", "text": "something slow"})
        await engine.handle({"type": "message", "text": "what is the price"})
        await _collect(engine, sent, lambda s: any(m.get("text") == "It costs ten euros." for m in s))
        answered_before_action = not any(m["type"] == "action" for m in sent)
        api.slow_release.set()
        await _collect(engine, sent, lambda s: any(m.get("text") == "Done: true" for m in s))
        await engine.close()
        return answered_before_action

    assert run(scenario()) is True


def test_a_failed_action_is_spoken_as_an_error_and_recorded(api):
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    broken = ApiActionSpec(name="order_status", url="{API_BASE}/status/503", parameters=ORDER.parameters)

    async def scenario():
        engine = call_open("text", _ctx(api, api_actions=(broken,)), send)
        engine.start()
        await engine.handle({"type": "message", "text": "my order"})
        await _collect(engine, sent, lambda s: any(m.get("type") == "action" for m in s))
        await _collect(engine, sent, lambda s: any(m.get("text") == "Sorry, I could not do that right now."
                                                   for m in s))
        await engine.close()

    run(scenario())
    action = next(m for m in sent if m["type"] == "action")
    assert not action["ok"] and action["result"] == "The API answered with status 503."


def test_realtime_model_asks_for_the_tool_and_gets_the_answer(api, fake_realtime):
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    ctx = _ctx(api, provider="openai_realtime", secrets={"OPENAI_API_KEY": fake_realtime.api_key},
               variables={"API_BASE": api.url, "OPENAI_BASE_URL": fake_realtime.base_url})

    async def scenario():
        engine = call_open("text", ctx, send)
        engine.start()
        await _collect(engine, sent, lambda s: "session.update" in fake_realtime.types())  # the session is set up
        await engine.handle({"type": "message", "text": "status of order 77"})
        await _collect(engine, sent, lambda s: any(m.get("type") == "action" for m in s))
        await _collect(engine, sent, lambda s: any(  # the answer went back to the model
            e.get("item", {}).get("type") == "function_call_output" for e in fake_realtime.events))
        await engine.close()

    run(scenario())
    update = next(e for e in fake_realtime.events if e["type"] == "session.update")["session"]
    tool = next(t for t in update["tools"] if t["name"] == "order_status")
    assert tool["parameters"]["required"] == ["order_id"]
    outputs = [e["item"] for e in fake_realtime.events
               if e["type"] == "conversation.item.create" and e["item"].get("type") == "function_call_output"]
    assert outputs == [{"type": "function_call_output", "call_id": "call_fc_1", "output": "shipped"}]
    assert api.requests[0][1] == "/orders/77"


@pytest.mark.django_db(transaction=True)
def test_relay_chat_model_runs_an_oauth2_action_end_to_end(asgi_server, twilio_sandbox, fake_chat, api, caplog):
    from agents import services

    caplog.set_level(logging.DEBUG)
    setup = make_call_setup(sandbox=twilio_sandbox, transport="conversation_relay", provider="openai_chat",
                            secrets_={"OPENAI_API_KEY": fake_chat.api_key},
                            variables={"OPENAI_BASE_URL": fake_chat.base_url, "OPENAI_CHAT_MODEL": "fake-chat",
                                       "API_BASE": api.url})
    AuthConnector.objects.create(environment=setup.environment, name="shop", kind="oauth2_client_credentials",
                                 config={"token_url": api.url + "/token", "client_id": api.client_id},
                                 secret=api.client_secret)
    services.api_action_save(draft=setup.version, name="order_status", description="Look up an order.",
                             url="{API_BASE}/secure/orders/{order_id}", auth_connector="shop",
                             parameters=[{"name": "order_id", "type": "string", "required": True}],
                             wait_message="Let me check.")
    session = setup.new_session()
    token = setup.token()

    async def scenario():
        async with relay_connect(asgi_server, setup) as ws:
            client = RelayClient(ws)
            await client.setup(token=token, call_sid=session.call_sid)
            await client.reply()  # greeting
            await client.prompt("where is order 42")

            async def said():
                while not (text := await client.reply()):
                    pass  # the tool-call turn ends with an empty last token
                return text
            wait = await said()
            answer = await said()
            await ws.close()
            return wait, answer

    wait, answer = run(scenario())
    assert wait == "Let me check."
    assert answer.startswith("The tool said: ") and '"ok":true' in answer
    body = fake_chat.requests[0][1]
    tool = next(t for t in body["tools"] if t["function"]["name"] == "order_status")
    assert tool["function"]["parameters"]["properties"] == {"order_id": {"type": "string"}}
    tool_message = fake_chat.requests[-1][1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_order"
    assert api.token_requests == 1
    assert eventually(lambda: CallActionRun.objects.filter(call_session=session).exists())
    run_ = CallActionRun.objects.get(call_session=session)
    assert (run_.name, run_.ok, run_.status_code, run_.parameters) == ("order_status", True, 200, {"order_id": "42"})
    assert eventually(lambda: CallTurn.objects.filter(call_session=session, text__startswith="Action order_status").exists())
    # No secret or token anywhere: transcript, stored run, the model's messages, logs.
    stored = " ".join(CallTurn.objects.filter(call_session=session).values_list("text", flat=True)) + run_.result
    model_saw = json.dumps([r[1] for r in fake_chat.requests])
    for secret in [api.client_secret, *api.tokens]:
        assert secret not in stored and secret not in model_saw and secret not in caplog.text
    assert ApiAction.objects.get(version=setup.version).name == "order_status"


@pytest.mark.django_db(transaction=True)
def test_media_streams_realtime_model_runs_an_action_mid_call(asgi_server, twilio_sandbox, fake_realtime, api):
    from websockets.asyncio.client import connect

    from agents import services

    from .conftest import TwilioMediaClient
    from .test_media_streams import LOUD

    fake_realtime.tool_after_loud_frames = 3
    fake_realtime.tool_name = "store_hours"
    setup = make_call_setup(sandbox=twilio_sandbox, provider="openai_realtime",
                            secrets_={"OPENAI_API_KEY": fake_realtime.api_key},
                            variables={"OPENAI_BASE_URL": fake_realtime.base_url, "API_BASE": api.url})
    services.api_action_save(draft=setup.version, name="store_hours", url="{API_BASE}/orders/hours",
                             result_pointer="/order", wait_message="Just a second.")
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            for i in range(4):
                await twilio.media(LOUD, chunk=i)
            await until(lambda: any(e.get("item", {}).get("type") == "function_call_output"
                                    for e in fake_realtime.events), what="the action's result reached the model")
            await twilio.stop()

    run(scenario())
    update = next(e for e in fake_realtime.events if e["type"] == "session.update")["session"]
    tool = next(t for t in update["tools"] if t["name"] == "store_hours")
    assert "Just a second." in tool["description"]  # a speech-to-speech model says the wait message itself
    output = next(e["item"] for e in fake_realtime.events if e.get("item", {}).get("type") == "function_call_output")
    assert json.loads(output["output"]) == {"id": "hours", "status": "shipped", "eta": "Tuesday"}
    assert eventually(lambda: CallActionRun.objects.filter(call_session=session, ok=True).exists())


@pytest.mark.django_db(transaction=True)
def test_studio_test_chat_shows_the_action_run(asgi_server, api):
    from websockets.asyncio.client import connect

    from agents import services
    from tests.factories import MembershipFactory, UserFactory
    from workspaces.models import Membership

    from .test_test_chat import _cookie_for, _url

    setup = make_call_setup(variables={"API_BASE": api.url})
    AuthConnector.objects.create(environment=setup.environment, name="shop", kind="bearer",
                                 secret="bearer-secret-never-shown")
    services.api_action_save(draft=setup.version, name="order_status", url="{API_BASE}/leak", auth_connector="shop",
                             parameters=[{"name": "order_id", "type": "string", "required": True}])
    version = setup.version
    version.handover_rules = [{"keyword": "order", "action": "order_status", "parameters": {"order_id": "5"},
                               "say": "Answer: {result}"}]
    version.save()
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    cookie = _cookie_for(admin)

    async def scenario():
        received = []
        async with connect(_url(asgi_server, version.pk, setup.environment.pk),
                           additional_headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}) as ws:
            async def read_until(pred):
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    received.append(msg)
                    if pred(msg):
                        return msg
            await read_until(lambda m: m["type"] == "ready")
            await ws.send(json.dumps({"type": "message", "text": "my order"}))
            action = await read_until(lambda m: m["type"] == "action")
            await read_until(lambda m: m["type"] == "turn" and m["text"].startswith("Answer:"))
        return action, received

    action, received = run(scenario())
    assert action["name"] == "order_status" and action["status"] == "200" and action["parameters"] == {"order_id": "5"}
    assert "[redacted]" in action["result"]
    assert "bearer-secret-never-shown" not in json.dumps(received)


def test_an_action_with_malformed_parameters_is_left_out_of_the_tools(api):
    from calls.providers.base import Provider

    bad = ApiActionSpec(name="broken", url="https://x.example/", parameters=({"name": "X Y"},))
    tools = Provider(_ctx(api, api_actions=(ORDER, bad))).tools()
    assert [t["name"] for t in tools] == ["order_status", "end_call"]


@pytest.mark.django_db(transaction=True)
def test_studio_test_chat_with_a_chat_model_asking_for_the_tool(asgi_server, fake_chat, api):
    from websockets.asyncio.client import connect

    from agents import services
    from tests.factories import MembershipFactory, UserFactory
    from workspaces.models import Membership

    from .test_test_chat import _cookie_for, _url

    setup = make_call_setup(provider="openai_chat", secrets_={"OPENAI_API_KEY": fake_chat.api_key},
                            variables={"OPENAI_BASE_URL": fake_chat.base_url, "API_BASE": api.url})
    services.api_action_save(draft=setup.version, name="order_status", url="{API_BASE}/orders/{order_id}",
                             parameters=[{"name": "order_id", "type": "string", "required": True}],
                             result_pointer="/order/eta")
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    cookie = _cookie_for(admin)

    async def scenario():
        async with connect(_url(asgi_server, setup.version.pk, setup.environment.pk),
                           additional_headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}) as ws:
            async def read_until(pred):
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if pred(msg):
                        return msg
            await read_until(lambda m: m["type"] == "ready")
            await ws.send(json.dumps({"type": "message", "text": "status of order 31"}))
            action = await read_until(lambda m: m["type"] == "action")
            answer = await read_until(lambda m: m["type"] == "turn" and m["role"] == "agent"
                                      and m["text"].startswith("The tool said"))
        return action, answer

    action, answer = run(scenario())
    assert action["parameters"] == {"order_id": "31"} and action["result"] == "Tuesday"
    assert answer["text"] == "The tool said: Tuesday"


def test_a_test_suite_scenario_waits_for_the_action_and_sees_it_called(api):
    from calls.services.test_runs import converse, expectations_check

    api.delay = 0.3  # the wait message is said long before the answer
    conversation = run(converse(_ctx(api, greeting="Hi."), ["where is my order"]))
    assert {"role": "agent", "text": "Your order is shipped."} in conversation
    assert expectations_check([{"kind": "action_called", "value": "order_status", "arguments": {"order_id": "42"}}],
                              conversation) == []
