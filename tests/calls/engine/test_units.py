"""Unit tests: μ-law helpers, the scripted provider, the context's secrets handling, the realtime text mode."""
import asyncio
import base64

import pytest

from calls.engine import audio
from calls.engine.context import CallContext, HandoverActionSpec
from calls.engine.events import AudioOut, Handover, Hangup, SpeechStarted, TextOut
from calls.providers import ProviderConfigError, get_provider
from calls.providers.scripted import ScriptedProvider


def test_ulaw_round_trip_and_levels():
    for sample in (-32000, -1000, -10, 0, 10, 1000, 32000):
        decoded = audio.ulaw_decode_sample(audio.ulaw_encode_sample(sample))
        assert abs(decoded - sample) <= max(8, abs(sample) // 16)
    assert audio.frame_level(audio.silence(20)) == 0
    assert audio.frame_level(audio.tone(440, 20)) > 8
    assert audio.duration_ms(base64.b64encode(audio.silence(120)).decode()) == 120
    assert len(audio.prompt("apology")) > 8000  # over a second: never dead air while the call is redirected


def _ctx(**kw):
    base = dict(transport="text", provider="scripted", greeting="Hi there.",
                scripted_answers=({"keywords": ["price"], "answer": "It costs ten euros."},),
                handover_rules=({"keyword": "human", "digit": "0", "action": "transfer_to_support"},
                                {"keyword": "goodbye", "action": "hangup"}),
                actions=(HandoverActionSpec("transfer_to_support", "+31207654321"),),
                secrets={"OPENAI_API_KEY": "sk-secret-value"})
    base.update(kw)
    return CallContext(**base)


def _drain(provider):
    out = []
    while not provider.events.empty():
        out.append(provider.events.get_nowait())
    return out


def test_scripted_text_rules():
    async def scenario():
        p = ScriptedProvider(_ctx())
        await p.start()
        greeting = "".join(e.token for e in _drain(p) if isinstance(e, TextOut))
        await p.on_text("What is the price?")
        answer = "".join(e.token for e in _drain(p) if isinstance(e, TextOut))
        await p.on_text("a human please")
        handover = [e for e in _drain(p) if isinstance(e, Handover)]
        await p.on_dtmf("0")
        by_digit = [e for e in _drain(p) if isinstance(e, Handover)]
        await p.on_text("ok goodbye")
        hangup = [e for e in _drain(p) if isinstance(e, Hangup)]
        return greeting, answer, handover, by_digit, hangup

    greeting, answer, handover, by_digit, hangup = asyncio.run(scenario())
    assert greeting == "Hi there."
    assert answer == "It costs ten euros."
    assert handover[0].action_name == by_digit[0].action_name == "transfer_to_support"
    assert hangup


def test_scripted_audio_detects_speech_for_barge_in():
    async def scenario():
        # The tone mode (no offline speech stack); with real speech: tests/calls/engine/test_cascaded.py
        p = ScriptedProvider(_ctx(transport="media_streams", variables={"SCRIPTED_SPEECH": "tones"}))
        await p.start()
        assert any(isinstance(e, AudioOut) for e in _drain(p))  # the greeting prompt
        quiet = base64.b64encode(audio.silence(20)).decode()
        loud = base64.b64encode(audio.tone(300, 20, amplitude=12000)).decode()
        for _ in range(5):
            await p.on_audio(quiet)
        assert not _drain(p)
        for _ in range(3):
            await p.on_audio(loud)
        return _drain(p)

    assert [type(e) for e in asyncio.run(scenario())] == [SpeechStarted]


def test_context_repr_hides_secrets_and_provider_modalities_are_checked():
    ctx = _ctx()
    assert "sk-secret-value" not in repr(ctx)
    assert ctx.setting("OPENAI_API_KEY") == "sk-secret-value"
    with pytest.raises(ProviderConfigError):
        get_provider(_ctx(provider="openai_chat", transport="media_streams"))
    with pytest.raises(ProviderConfigError):
        get_provider(_ctx(provider="nope"))


def test_realtime_provider_text_mode_against_the_fake(fake_realtime):
    """The realtime provider also serves the text test chat (output_modalities text)."""
    ctx = _ctx(provider="openai_realtime", greeting="", secrets={"OPENAI_API_KEY": fake_realtime.api_key},
               variables={"OPENAI_BASE_URL": fake_realtime.base_url})

    async def scenario():
        p = get_provider(ctx)
        await p.start()
        await p.on_text("hello")
        tokens = []
        while True:
            e = await asyncio.wait_for(p.events.get(), 3)
            if isinstance(e, TextOut):
                tokens.append(e.token)
                if e.last:
                    break
        await p.on_text("sales please")
        while True:
            e = await asyncio.wait_for(p.events.get(), 3)
            if isinstance(e, Handover):
                break
        await p.close()
        return "".join(tokens), e

    text, handover = asyncio.run(scenario())
    assert text == "You said: hello"
    assert handover.action_name == "transfer_to_sales"
    update = next(e for e in fake_realtime.events if e["type"] == "session.update")["session"]
    assert update["output_modalities"] == ["text"] and "audio" not in update


@pytest.mark.django_db
def test_admission_loads_the_whole_context_in_a_few_queries(django_assert_max_num_queries):
    from calls.consumers.stream import admit_call

    from .conftest import make_call_setup

    setup = make_call_setup(provider="openai_realtime", secrets_={"OPENAI_API_KEY": "sk-abc", "OTHER": "x"},
                            variables={"OPENAI_REALTIME_MODEL": "m", "HANDOVER_FALLBACK": "transfer_to_support"})
    session = setup.new_session()
    token = setup.token()
    with django_assert_max_num_queries(8):  # 8th: the version's knowledge (ids only, knowledge.selectors)
        ctx = admit_call(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid,
                         transport="media_streams")
    assert ctx.setting("OPENAI_API_KEY") == "sk-abc"
    assert ctx.fallback == "transfer_to_support"
    assert [a.name for a in ctx.actions] == ["transfer_to_sales", "transfer_to_support"]
    assert ctx.creds.account_sid == setup.connection.account_sid and ctx.connector_identifier


@pytest.mark.django_db
def test_dial_result_callback_is_bounded_in_queries(client, django_assert_max_num_queries):
    from twilio.request_validator import RequestValidator

    from calls.services import handovers as handover

    from .conftest import make_call_setup

    setup = make_call_setup()
    setup.new_session()
    record = handover.handover_record(call_session_id=setup.session.pk,
                                      action=HandoverActionSpec("transfer_to_sales", "+31201234567"),
                                      transport="media_streams")
    path = f"/v1/agents/{setup.connector.identifier}/dial-result?handover={record.pk}"
    params = {"CallSid": setup.session.call_sid, "AccountSid": setup.connection.account_sid,
              "DialCallStatus": "busy"}
    signature = RequestValidator(setup.connection.auth_token).compute_signature(
        "https://calls.example.test" + path, params)
    with django_assert_max_num_queries(8):
        assert client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
