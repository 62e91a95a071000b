"""ConversationRelay's per-version speech options in the incoming-call TwiML: exactly what twilio's helpers build."""
import pytest
from django.test import Client
from twilio.twiml.voice_response import Connect, ConversationRelay, VoiceResponse

from agents import services as agent_services
from agents.models import AgentVersion
from connectors import services
from tests.agents.factories import PhoneConnectorFactory, published_agent

from .helpers import call_params, connection_for, signed_get, signed_post, twiml

pytestmark = pytest.mark.django_db

RELAY = AgentVersion.Transport.CONVERSATION_RELAY
WSS = "wss://calls.example.test/v1/stream/relay"


def _expected(connector, token, attributes, languages=()):
    """The answer written with twilio's TwiML classes directly (Twilio's documented attribute names)."""
    response = VoiceResponse()
    connect = Connect(action=connector.handover_url)
    relay = ConversationRelay(url=WSS, **attributes)
    for language in languages:
        relay.language(**language)
    relay.parameter(name="session", value=token)
    connect.append(relay)
    response.append(connect)
    return str(response)


def _connector(workspace, **fields):
    agent = published_agent(workspace, transport=RELAY, **fields)
    return PhoneConnectorFactory(workspace=workspace, agent=agent), agent.latest_version


COMBINATIONS = {
    "google voice, deepgram model, dtmf": (
        dict(language="en-US", voice="en-US-Journey-O", relay_tts_provider="Google",
             relay_transcription_provider="Deepgram", relay_speech_model="nova-3-general", relay_dtmf_detection=True),
        dict(language="en-US", tts_provider="Google", voice="en-US-Journey-O", transcription_provider="Deepgram",
             speech_model="nova-3-general", dtmf_detection=True),
        (),
    ),
    "elevenlabs tuned, interruptions, hints": (
        dict(language="en-GB", voice="UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.0_0.8_0.6", relay_tts_provider="ElevenLabs",
             relay_interruptible="speech", relay_preemptible=True, relay_hints=["Callwell", "ConversationRelay"]),
        dict(language="en-GB", tts_provider="ElevenLabs", voice="UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.0_0.8_0.6",
             interruptible="speech", preemptible=True, hints="Callwell,ConversationRelay"),
        (),
    ),
    "amazon with two language entries": (
        dict(language="en-US", voice="Joanna-Neural", relay_tts_provider="Amazon", relay_transcription_provider="Google",
             relay_speech_model="telephony", relay_interruptible="none",
             relay_languages=[{"code": "sv-SE", "tts_provider": "Amazon", "voice": "Elin-Neural",
                               "transcription_provider": "Google", "speech_model": "long"},
                              {"code": "nl-NL", "tts_provider": "Google", "voice": "nl-NL-Wavenet-B"}]),
        dict(language="en-US", tts_provider="Amazon", voice="Joanna-Neural", transcription_provider="Google",
             speech_model="telephony", interruptible="none"),
        (dict(code="sv-SE", tts_provider="Amazon", voice="Elin-Neural", transcription_provider="Google",
              speech_model="long"),
         dict(code="nl-NL", tts_provider="Google", voice="nl-NL-Wavenet-B")),
    ),
    "multi: detect the language": (
        dict(language="multi", relay_tts_provider="ElevenLabs", relay_transcription_provider="Deepgram",
             relay_speech_model="nova-2-general"),
        dict(language="multi", tts_provider="ElevenLabs", transcription_provider="Deepgram",
             speech_model="nova-2-general"),
        (),
    ),
}


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_connect_twiml_is_what_twilios_helpers_build(workspace, name):
    fields, attributes, languages = COMBINATIONS[name]
    connector, version = _connector(workspace, **fields)
    body = services.connect_twiml(connector=connector, version=version, token="TOKEN")
    assert body == _expected(connector, "TOKEN", attributes, languages)


def test_version_without_options_renders_as_before(workspace):
    """A version saved before the options existed: only url, language and voice, as the TwiML always was."""
    connector, version = _connector(workspace, language="nl-NL", voice="Laura-Neural")
    body = services.connect_twiml(connector=connector, version=version, token="TOKEN")
    assert body == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Connect action="{connector.handover_url}">'
        f'<ConversationRelay language="nl-NL" url="{WSS}" voice="Laura-Neural">'
        '<Parameter name="session" value="TOKEN" /></ConversationRelay></Connect></Response>'
    )
    # Never Twilio's welcomeGreeting (the agent greets), and so never welcomeGreetingInterruptible either.
    assert "welcomeGreeting" not in body


def test_greeting_setting_is_not_a_twiml_attribute(workspace):
    connector, version = _connector(workspace, relay_welcome_greeting_interruptible="none")
    body = services.connect_twiml(connector=connector, version=version, token="TOKEN")
    assert body == _expected(connector, "TOKEN", {"language": "en-US"})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_signed_incoming_call_gets_the_versions_relay_options(workspace, method):
    connection = connection_for(workspace)
    fields, attributes, languages = COMBINATIONS["amazon with two language entries"]
    connector, version = _connector(workspace, **fields)
    send = signed_get if method == "GET" else signed_post
    response = send(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    assert response.status_code == 200
    token = twiml(response).find("Connect/ConversationRelay/Parameter").get("value")
    assert response.content.decode() == _expected(connector, token, attributes, languages)
    assert services.stream_token_consume(token=token).agent_version == version


def test_publishing_new_options_changes_the_next_call(workspace):
    connection = connection_for(workspace)
    connector, v1 = _connector(workspace)
    draft = AgentVersion.objects.get(agent=v1.agent, state="draft")
    agent_services.agent_draft_update(draft=draft, relay_tts_provider="Google", voice="en-US-Journey-D",
                                      relay_hints=["Acme"])
    agent_services.agent_publish(agent=v1.agent)
    response = signed_get(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    relay = twiml(response).find("Connect/ConversationRelay")
    assert (relay.get("ttsProvider"), relay.get("voice"), relay.get("hints")) == ("Google", "en-US-Journey-D", "Acme")


def test_a_keypad_rule_turns_dtmf_detection_on(workspace):
    """Twilio sends ConversationRelay key presses only with dtmfDetection on: a version whose rules a key triggers
    gets it even when the option is off (else "press 1" could never work)."""
    connector, version = _connector(workspace, provider="scripted", relay_dtmf_detection=False,
                                    handover_rules=[{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}])
    body = services.connect_twiml(connector=connector, version=version, token="TOKEN")
    assert body == _expected(connector, "TOKEN", dict(language=version.language, dtmf_detection=True))
    connector, version = _connector(workspace, provider="scripted", relay_dtmf_detection=False,
                                    handover_rules=[{"keyword": "sales", "action": "transfer_to_sales"}])
    assert 'dtmfDetection' not in services.connect_twiml(connector=connector, version=version, token="TOKEN")
