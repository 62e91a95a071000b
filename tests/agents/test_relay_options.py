"""ConversationRelay's speech options on a version: the form's checks, publish/restore, the diff, the pages."""
import pytest

from agents import selectors, services
from agents.forms import AgentVersionForm
from agents.models import AgentVersion
from tests.agents.factories import AgentFactory, draft_of, published_agent

pytestmark = pytest.mark.django_db

RELAY = "conversation_relay"


def _data(**overrides):
    data = {"caller_name": "Acme", "greeting": "Welcome", "instructions": "Help", "language": "en-US", "voice": "",
            "transport": RELAY, "provider": "scripted", "variables_text": "", "secrets_text": "",
            "scripted_answers_text": "", "handover_rules_text": ""}
    data.update(overrides)
    return data


def _languages(*rows, extra=1):
    data = {"relay_lang-TOTAL_FORMS": str(len(rows) + extra), "relay_lang-INITIAL_FORMS": "0",
            "relay_lang-MIN_NUM_FORMS": "0", "relay_lang-MAX_NUM_FORMS": "10"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"relay_lang-{i}-{key}"] = value
    return data


def _form(workspace, **overrides):
    draft = draft_of(AgentFactory(workspace=workspace))
    return AgentVersionForm(_data(**overrides), instance=draft)


def _errors(form, field):
    assert not form.is_valid()
    return " ".join(form.errors.get(field, []))


# ---------------------------------------------------------------------------
# Voices and speech models against the provider


def test_voice_of_another_provider_is_refused_naming_the_right_one(workspace):
    form = _form(workspace, relay_tts_provider="Amazon", voice="en-US-Journey-O")
    assert _errors(form, "voice") == (
        "en-US-Journey-O is a Google voice, not a Amazon (Polly) one: choose Google as the text-to-speech provider, "
        "or one of Amazon (Polly)'s voices.")


def test_voice_without_provider_is_checked_against_twilios_default_elevenlabs(workspace):
    message = _errors(_form(workspace, voice="Joanna-Neural"), "voice")
    assert message.startswith("Twilio's default text-to-speech provider is ElevenLabs. Joanna-Neural is a Amazon")
    assert _form(workspace, voice="UgBBYS2sOqTuMpoF3BR0").is_valid()


def test_unknown_voice_is_refused_with_the_providers_list(workspace):
    message = _errors(_form(workspace, relay_tts_provider="Google", voice="alice"), "voice")
    assert message.startswith("alice is not one of Google's voices. Choose one from the list: en-US-Journey-O,")


def test_voice_for_another_language_is_refused(workspace):
    message = _errors(_form(workspace, relay_tts_provider="Google", voice="en-US-Journey-O", language="nl-NL"),
                      "voice")
    assert "en-US-Journey-O speaks en-US, not nl-NL: choose a Google voice for nl-NL" in message
    # ElevenLabs voices speak every language; a regional variant of the same language is fine.
    assert _form(workspace, relay_tts_provider="ElevenLabs", voice="g6xIsTj2HwM6VR4iXFCw", language="nl-NL").is_valid()
    assert _form(workspace, relay_tts_provider="Google", voice="en-GB-Journey-D", language="en-US").is_valid()


def test_elevenlabs_tuning_suffix_is_accepted_and_checked(workspace):
    assert _form(workspace, relay_tts_provider="ElevenLabs",
                 voice="UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.0_0.8_0.6").is_valid()
    message = _errors(_form(workspace, relay_tts_provider="ElevenLabs", voice="UgBBYS2sOqTuMpoF3BR0-eleven_v9"),
                      "voice")
    assert "the model after the voice id must be one of flash_v2_5" in message


def test_speech_model_of_another_provider_is_refused(workspace):
    message = _errors(_form(workspace, relay_transcription_provider="Google", relay_speech_model="nova-3-general"),
                      "relay_speech_model")
    assert message.startswith("nova-3-general is a Deepgram speech model: choose Deepgram as the speech recognition "
                              "provider, or one of Google's models (telephony,")
    # Empty provider: Twilio's default, Deepgram.
    assert "telephony is a Google speech model" in _errors(_form(workspace, relay_speech_model="telephony"),
                                                           "relay_speech_model")
    assert _form(workspace, relay_transcription_provider="Google", relay_speech_model="long").is_valid()


def test_media_streams_voice_is_not_a_relay_voice(workspace):
    """Over Media Streams the voice is the model's (OpenAI Realtime's alloy): the relay catalogue does not apply."""
    assert _form(workspace, transport="media_streams", provider="openai_realtime", voice="alloy").is_valid()


# ---------------------------------------------------------------------------
# Languages, interruptions, DTMF, hints


@pytest.mark.parametrize("value,expected", [("en-US", "en-US"), ("en-us", "en-US"), ("pt_br", "pt-BR"),
                                            ("es-419", "es-419"), ("zh-hans-cn", "zh-Hans-CN"), ("MULTI", "multi")])
def test_language_is_a_bcp47_code_in_canonical_case(workspace, value, expected):
    form = _form(workspace, language=value, relay_tts_provider="ElevenLabs")
    assert form.is_valid(), form.errors
    assert form.content()["language"] == expected


@pytest.mark.parametrize("value", ["english", "en-USA-x", "e", "en US"])
def test_language_that_is_not_bcp47_is_refused(workspace, value):
    assert "is not a language code: use a BCP-47 code such as en-US" in _errors(_form(workspace, language=value),
                                                                               "language")


def test_multi_needs_elevenlabs_and_deepgram(workspace):
    form = _form(workspace, language="multi", relay_tts_provider="Google", relay_transcription_provider="Google")
    assert not form.is_valid()
    assert form.errors["relay_tts_provider"] == ["Automatic language detection (multi) needs ElevenLabs for "
                                                 "text-to-speech."]
    assert form.errors["relay_transcription_provider"] == ["Automatic language detection (multi) needs Deepgram to "
                                                           "recognise speech."]
    assert "needs the speech model nova-2-general or nova-3-general" in _errors(
        _form(workspace, language="multi", relay_speech_model="nova-2-phonecall"), "relay_speech_model")
    assert "works with ConversationRelay only" in _errors(_form(workspace, language="multi", transport="media_streams"),
                                                          "language")


def test_greeting_interruptibility_must_be_expressible(workspace):
    message = _errors(_form(workspace, relay_welcome_greeting_interruptible="speech"),
                      "relay_welcome_greeting_interruptible")
    assert "speech for the greeting works only when replies use speech too" in message
    assert _form(workspace, relay_welcome_greeting_interruptible="speech", relay_interruptible="speech").is_valid()
    assert _form(workspace, relay_welcome_greeting_interruptible="none", relay_interruptible="dtmf").is_valid()


def test_key_press_rules_need_dtmf_detection_on_conversation_relay(workspace):
    from tests.agents.factories import HandoverActionFactory, rows_post

    draft = draft_of(AgentFactory(workspace=workspace))
    HandoverActionFactory(version=draft, name="transfer_to_sales")
    rules = rows_post("rules", {"digit": "1", "action": "transfer_to_sales"})

    def form(**overrides):
        return AgentVersionForm(_data(**rules, **overrides), instance=draft)

    message = _errors(form(), "relay_dtmf_detection")
    assert message == ("Your handover rules use key presses (1): turn on DTMF detection, or Twilio never tells the "
                       "agent about them.")
    assert form(relay_dtmf_detection="on").is_valid()
    assert form(transport="media_streams").is_valid()


def test_hints_are_comma_separated_deduplicated_and_bounded(workspace):
    form = _form(workspace, relay_hints_text=" Callwell, ConversationRelay ,,Callwell, Code Exchange")
    assert form.is_valid(), form.errors
    assert form.content()["relay_hints"] == ["Callwell", "ConversationRelay", "Code Exchange"]
    many = ",".join(f"word{i}" for i in range(101))
    assert _errors(_form(workspace, relay_hints_text=many), "relay_hints_text") == "At most 100 hints (this has 101)."
    assert "Each hint has at most 100 characters" in _errors(_form(workspace, relay_hints_text="x" * 101),
                                                             "relay_hints_text")


def test_unknown_choice_values_are_refused(workspace):
    form = _form(workspace, relay_tts_provider="Azure", relay_interruptible="sometimes")
    assert not form.is_valid()
    assert "relay_tts_provider" in form.errors and "relay_interruptible" in form.errors


# ---------------------------------------------------------------------------
# <Language> entries


def test_language_entries_are_saved_without_empty_keys(workspace):
    form = _form(workspace, relay_tts_provider="Amazon", voice="Joanna-Neural", **_languages(
        {"code": "sv-se", "tts_provider": "Amazon", "voice": "Elin-Neural", "transcription_provider": "Google",
         "speech_model": "long"},
        {"code": "nl-NL", "tts_provider": "Google", "voice": "nl-NL-Wavenet-B"},
    ))
    assert form.is_valid(), (form.errors, form.languages.errors)
    assert form.content()["relay_languages"] == [
        {"code": "sv-SE", "tts_provider": "Amazon", "voice": "Elin-Neural", "transcription_provider": "Google",
         "speech_model": "long"},
        {"code": "nl-NL", "tts_provider": "Google", "voice": "nl-NL-Wavenet-B"},
    ]


def test_language_entry_errors_sit_next_to_the_entry(workspace):
    form = _form(workspace, **_languages(
        {"code": "de-DE", "tts_provider": "Google", "voice": "Vicki-Neural"},
        {"code": "de-DE"},
        {"code": "fr-FR", "transcription_provider": "Google", "speech_model": "nova-2-general"},
    ))
    assert not form.is_valid()
    assert form.non_field_errors() == ["Correct the language entries below."]
    first, second, third = form.languages.forms[:3]
    assert first.errors["voice"][0].startswith("Vicki-Neural is a Amazon (Polly) voice, not a Google one")
    assert second.errors["code"] == ["de-DE is listed twice: one entry per language."]
    assert third.errors["speech_model"][0].startswith("nova-2-general is a Deepgram speech model")


def test_language_entry_inherits_and_is_checked_with_what_it_inherits(workspace):
    # The Google en-US voice above would speak Swedish: refused for the entry that inherits it.
    form = _form(workspace, relay_tts_provider="Google", voice="en-US-Journey-O", **_languages({"code": "sv-SE"}))
    assert not form.is_valid()
    assert form.languages.forms[0].errors["voice"] == [
        "It inherits the voice above. en-US-Journey-O speaks en-US, not sv-SE: choose a Google voice for sv-SE, "
        "or an ElevenLabs voice (they speak every language)."]
    # Another provider with the voice above would be an invalid pair.
    form = _form(workspace, relay_tts_provider="Google", voice="en-US-Journey-O",
                 **_languages({"code": "en-GB", "tts_provider": "Amazon"}))
    assert not form.is_valid()
    assert "choose a Amazon (Polly) voice for en-GB" in form.languages.forms[0].errors["voice"][0]
    # An ElevenLabs voice above is fine for any language.
    assert _form(workspace, voice="UgBBYS2sOqTuMpoF3BR0", **_languages({"code": "sv-SE"})).is_valid()


def test_too_many_language_entries_are_refused(workspace):
    rows = [{"code": code} for code in ("en-US", "en-GB", "nl-NL", "de-DE", "fr-FR", "es-ES", "it-IT", "sv-SE",
                                        "pt-BR", "da-DK", "nb-NO")]
    form = _form(workspace, **_languages(*rows, extra=0))
    assert not form.is_valid()
    assert "Please submit at most 10 forms." in form.languages.non_form_errors()


# ---------------------------------------------------------------------------
# Versioning: publish, restore, diff


RELAY_OPTIONS = dict(
    transport=RELAY, language="en-US", voice="Joanna-Neural", relay_tts_provider="Amazon",
    relay_transcription_provider="Google", relay_speech_model="telephony", relay_interruptible="speech",
    relay_welcome_greeting_interruptible="none", relay_preemptible=True, relay_dtmf_detection=True,
    relay_hints=["Acme", "Callwell"],
    relay_languages=[{"code": "sv-SE", "tts_provider": "Amazon", "voice": "Elin-Neural"}],
)


def test_publish_and_restore_copy_the_relay_options(workspace):
    agent = published_agent(workspace, **RELAY_OPTIONS)
    v1 = agent.versions.get(number=1)
    assert {name: getattr(v1, name) for name in RELAY_OPTIONS} == RELAY_OPTIONS
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, relay_tts_provider="", voice="", relay_hints=[], relay_languages=[],
                                relay_preemptible=False, relay_dtmf_detection=False)
    v2 = services.agent_publish(agent=agent)
    assert (v2.relay_tts_provider, v2.relay_hints, v2.relay_languages, v2.relay_preemptible) == ("", [], [], False)
    restored = services.agent_version_restore(version=v1)
    restored.refresh_from_db()
    assert {name: getattr(restored, name) for name in RELAY_OPTIONS} == RELAY_OPTIONS


def test_diff_lists_changed_relay_options_with_labels(workspace):
    agent = published_agent(workspace, transport=RELAY)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, relay_tts_provider="Google", voice="en-US-Journey-O",
                                relay_dtmf_detection=True, relay_hints=["Acme"],
                                relay_languages=[{"code": "nl-NL", "voice": "UgBBYS2sOqTuMpoF3BR0"}])
    diff = selectors.version_diff(draft=draft, base=selectors.latest_published_get(agent_id=agent.pk))
    changes = {c.field: (c.label, c.old, c.new) for c in diff.fields}
    assert changes == {
        "voice": ("Voice", "", "en-US-Journey-O"),
        "relay_tts_provider": ("Text-to-speech provider", "", "Google"),
        "relay_languages": ("Language entries", [], [{"code": "nl-NL", "voice": "UgBBYS2sOqTuMpoF3BR0"}]),
        "relay_dtmf_detection": ("DTMF detection (key presses reach the agent)", False, True),
        "relay_hints": ("Speech recognition hints", [], ["Acme"]),
    }


def test_first_version_diff_leaves_out_unset_relay_options(workspace):
    agent = AgentFactory(workspace=workspace)
    diff = selectors.version_diff(draft=draft_of(agent), base=None)
    assert not any(c.field.startswith("relay_") for c in diff.fields)


def test_content_fields_include_every_relay_option():
    assert set(AgentVersion.RELAY_FIELDS) <= set(AgentVersion.CONTENT_FIELDS)
    assert {f.name for f in AgentVersion._meta.fields if f.name.startswith("relay_")} == set(AgentVersion.RELAY_FIELDS)


# ---------------------------------------------------------------------------
# The pages


def test_settings_page_saves_relay_options_and_shows_errors_next_to_fields(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    url = f"/studio/agents/{agent.pk}/"
    page = admin_client.get(url).content.decode()
    assert 'data-testid="relay-options"' in page and '<datalist id="relay-voices">' in page
    assert '<option value="UgBBYS2sOqTuMpoF3BR0">ElevenLabs: Mark' in page and 'name="relay_lang-TOTAL_FORMS"' in page

    response = admin_client.post(url, {**_data(relay_tts_provider="Google", voice="Joanna-Neural"), **_languages()})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="error-voice"' in page and "Joanna-Neural is a Amazon (Polly) voice" in page
    assert draft_of(agent).voice == ""  # nothing saved

    response = admin_client.post(url, {
        **_data(relay_tts_provider="Google", voice="en-US-Journey-O", relay_interruptible="any",
                relay_hints_text="Acme, Callwell", relay_dtmf_detection="on"),
        **_languages({"code": "de-DE", "voice": "de-DE-Journey-F"}),
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    draft = draft_of(agent)
    assert (draft.relay_tts_provider, draft.voice, draft.relay_interruptible) == ("Google", "en-US-Journey-O", "any")
    assert draft.relay_hints == ["Acme", "Callwell"] and draft.relay_dtmf_detection is True
    assert draft.relay_languages == [{"code": "de-DE", "voice": "de-DE-Journey-F"}]
    page = admin_client.get(url).content.decode()
    assert 'value="de-DE-Journey-F"' in page and 'value="Acme, Callwell"' in page

    # The language row's error is shown in its row.
    response = admin_client.post(url, {**_data(relay_tts_provider="Google", voice="en-US-Journey-O"),
                                       **_languages({"code": "fr-FR", "voice": "de-DE-Journey-F"})})
    page = response.content.decode()
    assert 'data-testid="error-relay_lang-0-voice"' in page and "de-DE-Journey-F speaks de-DE, not fr-FR" in page


def test_post_without_the_language_formset_keeps_the_entries(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, relay_languages=[{"code": "nl-NL"}])
    response = admin_client.post(f"/studio/agents/{agent.pk}/", _data(greeting="Changed"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.greeting == "Changed" and draft.relay_languages == [{"code": "nl-NL"}]


def test_publish_page_and_version_page_show_relay_options(admin_client, workspace):
    agent = published_agent(workspace, transport=RELAY)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, relay_tts_provider="Amazon", voice="Joanna-Neural",
                                relay_preemptible=True)
    page = admin_client.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "Text-to-speech provider" in page and "Amazon" in page
    assert "A new reply cuts the current one short" in page and ">yes</span>" in page
    admin_client.post(f"/studio/agents/{agent.pk}/publish/")
    v2 = agent.versions.get(number=2)
    page = admin_client.get(f"/studio/agents/{agent.pk}/versions/{v2.pk}/").content.decode()
    assert 'data-testid="version-relay_tts_provider"><span class="wrap">Amazon (Polly)' in page
    assert 'data-testid="version-voice"><span class="wrap">Joanna-Neural' in page
    assert "A new reply cuts the current one short</dt>" in page
    assert 'data-testid="version-relay_preemptible"><span class="wrap">yes' in page
