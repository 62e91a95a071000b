"""The OpenAI Realtime provider over Media Streams, against the local fake; provider failures (never dead air)."""

import pytest
from websockets.asyncio.client import connect

from calls.engine import engine
from calls.models import CallHandover, CallSession
from tests.conditions import until

from .conftest import TwilioMediaClient, make_call_setup, run
from .test_media_streams import LOUD, _closed

pytestmark = pytest.mark.django_db(transaction=True)


def realtime_setup(sandbox, fake, **variables):
    return make_call_setup(sandbox=sandbox, provider="openai_realtime",
                           secrets_={"OPENAI_API_KEY": fake.api_key},
                           variables={"OPENAI_BASE_URL": fake.base_url, "OPENAI_REALTIME_MODEL": "gpt-realtime-test",
                                      **variables})


def test_realtime_passthrough_barge_in_truncation_and_tool_handover(asgi_server, twilio_sandbox, fake_realtime):
    fake_realtime.tool_after_loud_frames = 8
    setup = realtime_setup(twilio_sandbox, fake_realtime)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            twilio.echo_marks = False
            await twilio.start(token=token, call_sid=session.call_sid)
            media = await twilio.read_until(lambda m: m.get("event") == "media")
            first_mark = await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.send({"event": "mark", "streamSid": twilio.stream_sid, "mark": first_mark["mark"]})
            for i in range(3):
                await twilio.media(LOUD, chunk=i)
            await twilio.read_until(lambda m: m.get("event") == "clear")
            twilio.echo_marks = True
            for i in range(3, 10):
                await twilio.media(LOUD, chunk=i)
            code = await _closed(ws)
            return media, code

    media, _ = run(scenario())
    # μ-law passthrough: the model's delta went to Twilio untouched.
    import base64

    from tests.fakes.openai_realtime import ULAW_CHUNK
    assert base64.b64decode(media["media"]["payload"]) == ULAW_CHUNK
    # The session was configured from the environment: key, model, pcmu both ways, server VAD, tools.
    assert fake_realtime.headers[0]["authorization"] == f"Bearer {fake_realtime.api_key}"
    assert fake_realtime.paths[0] == "/v1/realtime?model=gpt-realtime-test"
    update = next(e for e in fake_realtime.events if e["type"] == "session.update")["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert {t["name"] for t in update["tools"]} == {"transfer_to_sales", "transfer_to_support", "end_call"}
    # Caller audio went upstream as-is.
    appended = [e for e in fake_realtime.events if e["type"] == "input_audio_buffer.append"]
    assert base64.b64decode(appended[0]["audio"]) == LOUD
    # Barge-in: the model's reply was truncated at what Twilio had played (the first mark = 100 ms).
    truncate = next(e for e in fake_realtime.events if e["type"] == "conversation.item.truncate")
    assert truncate == {"type": "conversation.item.truncate", "item_id": "item_greet_1", "content_index": 0,
                        "audio_end_ms": 100}
    # Tool call → handover through the gateway.
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Number>+31201234567</Number></Dial>" in sent
    assert CallHandover.objects.get().action_name == "transfer_to_sales"


def test_realtime_beta_protocol_uses_g711_ulaw(asgi_server, twilio_sandbox, fake_realtime):
    setup = realtime_setup(twilio_sandbox, fake_realtime, OPENAI_REALTIME_PROTOCOL="beta")
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            await twilio.stop()
            await _closed(ws)

    run(scenario())
    update = next(e for e in fake_realtime.events if e["type"] == "session.update")["session"]
    assert update["input_audio_format"] == update["output_audio_format"] == "g711_ulaw"
    assert fake_realtime.headers[0]["openai-beta"] == "realtime=v1"


@pytest.mark.parametrize("mode,fallback,expect", [
    ("drop_after_greeting", "", "<Hangup />"),
    ("reject", "", "<Hangup />"),
    ("silent", "transfer_to_support", "<Number>+31207654321</Number>"),
])
def test_provider_failure_plays_an_apology_and_redirects_to_the_fallback(asgi_server, twilio_sandbox, fake_realtime,
                                                                         monkeypatch, mode, fallback, expect):
    monkeypatch.setattr(engine, "START_TIMEOUT", 0.5)
    fake_realtime.mode = mode
    variables = {"HANDOVER_FALLBACK": fallback} if fallback else {}
    setup = realtime_setup(twilio_sandbox, fake_realtime, **variables)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark" and m["mark"]["name"] == "apology")
            await _closed(ws)
            return [m for m in twilio.received if m.get("event") == "media"]

    media = run(scenario())
    assert media, "the caller heard the apology prompt"
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Say" in sent and "Sorry, something went wrong on our side." in sent
    assert expect in sent
    assert CallSession.objects.get(pk=session.pk).ended_at is not None
    if fallback:
        assert CallHandover.objects.get().action_name == "transfer_to_support"


def test_secrets_never_reach_the_logs(asgi_server, twilio_sandbox, fake_realtime, caplog):
    fake_realtime.mode = "reject"
    setup = realtime_setup(twilio_sandbox, fake_realtime)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await _closed(ws)

    with caplog.at_level("DEBUG"):
        run(scenario())
    # Our own log lines carry no secret at all, before any redaction.
    ours = [r for r in caplog.records if r.name.startswith(("connectors", "dialer", "calls", "telephony"))]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert "refused the connection" in text
    for secret in (fake_realtime.api_key, token, setup.connection.auth_token):
        assert secret not in text
    # Libraries' debug lines (e.g. the websocket handshake's Authorization header) leave the process only
    # through the configured handler, whose filter redacts them.
    from config.logging import JsonFormatter, RedactSecretsFilter

    emitted = []
    for record in caplog.records:
        RedactSecretsFilter().filter(record)
        emitted.append(JsonFormatter().format(record))
    for secret in (fake_realtime.api_key, setup.connection.auth_token):
        assert secret not in "\n".join(emitted)


def test_stop_frees_the_provider_connection(asgi_server, twilio_sandbox, fake_realtime):
    setup = realtime_setup(twilio_sandbox, fake_realtime)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            assert fake_realtime.closed_connections == 0
            await twilio.stop()
            await _closed(ws)
        await until(lambda: fake_realtime.closed_connections, what="the upstream socket closed")

    run(scenario())
    assert fake_realtime.closed_connections == 1  # the upstream socket was closed with the call
    assert CallSession.objects.get(pk=session.pk).ended_at is not None


def test_a_stuck_provider_does_not_delay_other_calls(asgi_server, twilio_sandbox, fake_realtime, monkeypatch):
    """One call's provider never answers; another call on the same process is greeted while it is still stuck
    (no clock: the stuck call cannot give up before the other is greeted)."""
    monkeypatch.setattr(engine, "START_TIMEOUT", 60.0)
    fake_realtime.mode = "silent"
    stuck = realtime_setup(twilio_sandbox, fake_realtime)
    stuck_session = stuck.new_session(sandbox=twilio_sandbox)
    stuck_token = stuck.token()
    fine = make_call_setup(sandbox=twilio_sandbox)
    fine_session = fine.new_session(sandbox=twilio_sandbox)
    fine_token = fine.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws_stuck, \
                connect(asgi_server.ws_base + "/v1/stream/media") as ws_fine:
            await TwilioMediaClient(ws_stuck).start(token=stuck_token, call_sid=stuck_session.call_sid)
            # The stuck call's provider is now waiting upstream.
            await until(lambda: fake_realtime.connections > 0, what="the stuck provider connected")
            fine_twilio = TwilioMediaClient(ws_fine, stream_sid="MZ" + "1" * 32)
            await fine_twilio.start(token=fine_token, call_sid=fine_session.call_sid)
            await fine_twilio.read_until(lambda m: m.get("event") == "media", timeout=30)
            return fake_realtime.closed_connections  # the stuck call still waits for its provider

    assert run(scenario()) == 0


def test_a_provider_that_cannot_run_over_media_streams_still_gets_the_apology(asgi_server, twilio_sandbox):
    """A version whose provider is text-only reaching a Media Stream: admitted, apology, redirect; not dead air."""
    setup = make_call_setup(sandbox=twilio_sandbox, provider="openai_chat")
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark" and m["mark"]["name"] == "apology")
            await _closed(ws)

    run(scenario())
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "Sorry, something went wrong on our side." in sent and "<Hangup />" in sent


def test_socket_closed_without_stop_frees_the_call(asgi_server, twilio_sandbox, fake_realtime):
    """Twilio's socket drops (no `stop`): the provider's upstream connection is closed, the call unregistered
    and ended."""
    from calls.engine import live

    from .conftest import eventually

    setup = realtime_setup(twilio_sandbox, fake_realtime)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token()

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid)
            await twilio.read_until(lambda m: m.get("event") == "media")
            assert live.get(session.pk) is not None
            await ws.close()  # no stop message

    run(scenario())
    assert eventually(lambda: fake_realtime.closed_connections == 1)
    assert eventually(lambda: live.get(session.pk) is None)
    assert eventually(lambda: CallSession.objects.get(pk=session.pk).ended_at is not None)
