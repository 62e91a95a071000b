"""The cascaded provider's stages on a version: the form's checks, the diff, publish, the readiness check."""
import pytest

from agents import selectors, services
from agents.forms import AgentVersionForm
from tests.agents.factories import AgentFactory, EnvironmentFactory, EnvironmentSecretFactory, draft_of

pytestmark = pytest.mark.django_db


def _data(**overrides):
    data = {"caller_name": "Acme", "greeting": "Welcome", "instructions": "Help", "language": "en-US", "voice": "",
            "transport": "media_streams", "provider": "cascaded", "variables_text": "", "secrets_text": "",
            "scripted_answers_text": "", "handover_rules_text": "", "stt_vendor": "deepgram", "stt_model": "nova-3",
            "chat_vendor": "anthropic", "chat_model": "claude-haiku-4-5", "tts_vendor": "elevenlabs",
            "tts_model": "eleven_flash_v2_5"}
    data.update(overrides)
    return data


def _form(workspace, **overrides):
    return AgentVersionForm(_data(**overrides), instance=draft_of(AgentFactory(workspace=workspace)))


def test_a_cascaded_version_saves_its_stages_and_they_show_in_the_diff(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    form = AgentVersionForm(_data(), instance=draft)
    assert form.is_valid(), form.errors
    services.agent_draft_update(draft=draft, **form.content())
    draft.refresh_from_db()
    assert (draft.stt_vendor, draft.chat_vendor, draft.tts_vendor, draft.tts_model) == (
        "deepgram", "anthropic", "elevenlabs", "eleven_flash_v2_5")
    diff = selectors.version_diff(draft=draft, base=None)
    assert {"stt_vendor", "stt_model", "chat_vendor", "chat_model", "tts_vendor", "tts_model"} <= {
        f.field for f in diff.fields}
    v1 = services.agent_publish(agent=agent)
    assert (v1.stt_vendor, v1.tts_model) == ("deepgram", "eleven_flash_v2_5")
    draft = services.agent_draft_ensure(agent=agent)
    draft.tts_vendor = "cartesia"
    draft.save()
    changed = selectors.version_diff(draft=draft, base=v1)
    assert [(f.field, f.old, f.new) for f in changed.fields] == [("tts_vendor", "elevenlabs", "cartesia")]


def test_cascaded_over_conversation_relay_is_refused(workspace):
    form = _form(workspace, transport="conversation_relay")
    assert not form.is_valid()
    assert "Media Streams" in " ".join(form.errors["provider"])


def test_an_offline_stage_takes_no_model_and_an_offline_voice_is_an_espeak_name(workspace):
    form = _form(workspace, stt_vendor="", tts_vendor="offline", voice="Rachel (calm)")
    assert not form.is_valid()
    assert "offline stage has no model" in " ".join(form.errors["stt_model"])
    assert "offline stage has no model" in " ".join(form.errors["tts_model"])
    assert "espeak-ng" in " ".join(form.errors["voice"])
    assert _form(workspace, stt_vendor="", stt_model="", tts_vendor="", tts_model="", voice="en-us+klatt").is_valid()


def test_a_model_name_with_odd_characters_is_refused(workspace):
    form = _form(workspace, chat_model="gpt 4o; drop")
    assert not form.is_valid() and "model name" in " ".join(form.errors["chat_model"])


def test_readiness_names_each_vendor_key_the_stages_need(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    draft.provider, draft.stt_vendor, draft.chat_vendor, draft.tts_vendor = "cascaded", "deepgram", "openai", ""
    draft.save()
    env = EnvironmentFactory(workspace=workspace, kind="staging")
    result = selectors.environment_completeness(version=draft, environment=env)
    assert result.missing_secrets == ["DEEPGRAM_API_KEY", "OPENAI_API_KEY"]  # offline speech needs no key
    EnvironmentSecretFactory(environment=env, name="DEEPGRAM_API_KEY")
    EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY")
    assert selectors.environment_completeness(version=draft, environment=env).complete
    draft.provider = "scripted"  # other providers: only the names the version lists
    draft.save()
    assert selectors.environment_completeness(version=draft, environment=EnvironmentFactory(
        workspace=workspace, kind="production")).complete


def test_a_chat_version_is_ready_with_its_chat_vendors_key(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    draft.provider, draft.transport, draft.chat_vendor = "openai_chat", "conversation_relay", "anthropic"
    draft.save()
    env = EnvironmentFactory(workspace=workspace, kind="staging")
    assert selectors.environment_completeness(version=draft, environment=env).missing_secrets == ["ANTHROPIC_API_KEY"]
    EnvironmentSecretFactory(environment=env, name="ANTHROPIC_API_KEY")
    assert selectors.environment_completeness(version=draft, environment=env).complete  # no OpenAI key asked
    draft.chat_vendor = ""  # the default vendor: the OpenAI-compatible model's key
    draft.save()
    assert selectors.environment_completeness(version=draft, environment=env).missing_secrets == ["OPENAI_API_KEY"]


def test_the_chat_options_are_offered_for_the_chat_provider_too(workspace):
    from agents import options
    from agents.models import AgentVersion

    form = _form(workspace, transport="conversation_relay", provider="openai_chat", stt_vendor="", stt_model="",
                 tts_vendor="", tts_model="", chat_vendor="anthropic", chat_model="claude-haiku-4-5")
    assert form.is_valid(), form.errors
    assert form.save().chat_vendor == "anthropic"
    chat_fields = [f.name for f in form.option_fields["chat"]]
    assert chat_fields == ["chat_vendor", "chat_model"]
    assert options.group("chat").used_by(AgentVersion(provider="openai_chat"))
    assert options.group("chat").used_by(AgentVersion(provider="cascaded"))
    assert not options.group("cascaded").used_by(AgentVersion(provider="openai_chat"))


def test_turn_patience_is_saved_published_and_reaches_the_call(workspace):
    from calls.engine.context import _version_fields

    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    form = AgentVersionForm(_data(turn_patience="patient"), instance=draft)
    assert form.is_valid(), form.errors
    services.agent_draft_update(draft=draft, **form.content())
    v1 = services.agent_publish(agent=agent)
    assert v1.turn_patience == "patient"
    assert _version_fields(v1)["speech"]["turn_patience"] == "patient"
    assert "turn_patience" in {f.field for f in selectors.version_diff(draft=v1, base=None).fields}
    assert not AgentVersionForm(_data(turn_patience="forever"), instance=draft).is_valid()
