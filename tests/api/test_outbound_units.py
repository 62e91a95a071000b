"""Units of calling out: variables filled into the agent's words, the greeting held for the callee, the
voicemail TwiML, the sandbox's number patterns."""
import asyncio

import pytest

from calls.engine.context import CallContext
from calls.engine.events import TextOut
from calls.providers.chat.base import ChatModel
from calls.providers.scripted import ScriptedProvider
from calls.providers.text_chat import ChatProvider as OpenAIChatProvider
from calls.services.outbound import OutboundRefused, clean_variables, fill, voicemail_twiml
from devtools.twilio_sandbox.outbound import behaviour_of


def _drain(provider):
    out = []
    while not provider.events.empty():
        out.append(provider.events.get_nowait())
    return out


def test_variables_fill_placeholders_and_leave_unknown_ones():
    assert fill("Hi {first_name}, about {order}: {unknown}", {"first_name": "Jane", "order": "A1"}) == \
        "Hi Jane, about A1: {unknown}"
    with pytest.raises(OutboundRefused):
        clean_variables({"bad name": "x"})
    with pytest.raises(OutboundRefused):
        clean_variables({"nested": {"a": 1}})
    assert clean_variables({"n": 3}) == {"n": "3"}


@pytest.mark.parametrize("provider_class", [ScriptedProvider, OpenAIChatProvider])
def test_an_outbound_greeting_waits_for_the_callees_first_words(provider_class):
    ctx = CallContext(transport="text", provider="scripted", greeting="Hi Jane.", greet_after_callee=True,
                      secrets={"OPENAI_API_KEY": "sk-x"})

    async def scenario():
        # The chat provider's model is never asked (the greeting is fixed): a model that opens and says nothing.
        p = provider_class(ctx) if provider_class is ScriptedProvider else provider_class(ctx, chat=ChatModel())
        await p.start()
        before = [e for e in _drain(p) if isinstance(e, TextOut)]
        await p.on_text("Hello?")
        after = "".join(e.token for e in _drain(p) if isinstance(e, TextOut))
        await p.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == [] and after == "Hi Jane."


class _Version:
    machine_action = "voicemail"
    voicemail_message = "Hi {first_name}, please call us back."
    voicemail_source = "message"
    voice = "Polly.Joanna"
    language = "en-US"


def test_the_voicemail_is_said_in_the_versions_voice_then_hangs_up():
    twiml = voicemail_twiml(version=_Version(), variables={"first_name": "Jane"})
    assert '<Say language="en-US" voice="Polly.Joanna">Hi Jane, please call us back.</Say><Hangup />' in twiml
    hang_up = type("V", (_Version,), {"machine_action": "hang_up"})()
    assert voicemail_twiml(version=hang_up, variables={}) is None


@pytest.mark.parametrize("to, behaviour", [("+15125550177", "busy"), ("+15125550188", "no-answer"),
                                           ("+15125550199", "failed"), ("+15125550166", "machine"),
                                           ("+15125550123", "person")])
def test_the_sandbox_tells_outcomes_by_number(to, behaviour):
    assert behaviour_of(to) == behaviour
