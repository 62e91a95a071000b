import json
import re

from django import forms

from agents import catalogue
from agents.catalogue import Interruptible, TranscriptionProvider, TtsProvider
from agents.models import NAME_RE, AgentVersion, AuthConnector, HandoverAction, identifier_validator, name_validator

MAX_HINTS = 100
MAX_HINT_CHARS = 100
MAX_LANGUAGES = 10
LANGUAGE_HELP = "A BCP-47 code such as en-US, nl-NL or pt-BR."


class AgentCreateForm(forms.Form):
    name = forms.CharField(max_length=120)


def _names(text: str, field: str) -> list[str]:
    names = [n.strip() for n in re.split(r"[,\s]+", text or "") if n.strip()]
    bad = [n for n in names if not re.match(NAME_RE, n)]
    if bad:
        raise forms.ValidationError(f"Not valid {field} names: {', '.join(bad)} (letters, digits, underscores).")
    return list(dict.fromkeys(names))


def _language_code(value: str) -> str:
    code = catalogue.normalise_language(value)
    if code is None:
        raise forms.ValidationError(f"{value} is not a language code: use a {LANGUAGE_HELP[2:]}")
    return code


class RelayLanguageForm(forms.Form):
    """One <Language> entry: the speech settings ConversationRelay uses while the call is in that language."""

    code = forms.CharField(label="Language", max_length=16, help_text=LANGUAGE_HELP + " Or multi (detect it).")
    tts_provider = forms.ChoiceField(label="Text-to-speech provider", required=False,
                                     choices=[("", "As above")] + TtsProvider.choices)
    voice = forms.CharField(label="Voice", required=False, max_length=64,
                            widget=forms.TextInput(attrs={"list": "relay-voices"}))
    transcription_provider = forms.ChoiceField(label="Speech recognition provider", required=False,
                                               choices=[("", "As above")] + TranscriptionProvider.choices)
    speech_model = forms.CharField(label="Speech model", required=False, max_length=32,
                                   widget=forms.TextInput(attrs={"list": "relay-speech-models"}))

    def clean_code(self):
        return _language_code(self.cleaned_data["code"])

    def clean_voice(self):
        return self.cleaned_data["voice"].strip()

    def clean_speech_model(self):
        return self.cleaned_data["speech_model"].strip()

    def entry(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v}


class BaseRelayLanguageFormSet(forms.BaseFormSet):
    def clean(self):
        seen = set()
        for form in self.forms:
            code = getattr(form, "cleaned_data", {}).get("code")
            if code and code in seen:
                form.add_error("code", f"{code} is listed twice: one entry per language.")
            seen.add(code)

    def entries(self) -> list[dict]:
        return [f.entry() for f in self.forms if getattr(f, "cleaned_data", None) and f.cleaned_data.get("code")]


RelayLanguageFormSet = forms.formset_factory(
    RelayLanguageForm, formset=BaseRelayLanguageFormSet, extra=2, max_num=MAX_LANGUAGES, validate_max=True,
    absolute_max=MAX_LANGUAGES * 2,
)


class AgentVersionForm(forms.ModelForm):
    """The draft's fields. Names lists are typed comma-separated; scripted tables as JSON."""

    variables_text = forms.CharField(label="Variables it uses", required=False,
                                     help_text="Names, comma-separated (e.g. COMPANY_NAME, OPENING_HOURS).")
    secrets_text = forms.CharField(label="Secrets it needs", required=False,
                                   help_text="Names, comma-separated (e.g. OPENAI_API_KEY).")
    scripted_answers_text = forms.CharField(
        label="Scripted answers (JSON)", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text='A list of {"keywords": ["hours"], "answer": "We are open 9 to 5."}.')
    handover_rules_text = forms.CharField(
        label="Scripted handover rules (JSON)", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text='A list of {"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}.')
    relay_hints_text = forms.CharField(
        label="Speech recognition hints", required=False, max_length=MAX_HINTS * (MAX_HINT_CHARS + 2),
        help_text=f"Words or phrases callers may say (product names, jargon), comma-separated; at most {MAX_HINTS}.")

    RELAY_FORM_FIELDS = [
        "relay_tts_provider", "relay_transcription_provider", "relay_speech_model", "relay_interruptible",
        "relay_welcome_greeting_interruptible", "relay_preemptible", "relay_dtmf_detection", "relay_hints_text",
    ]
    GENERAL_FIELDS = ["caller_name", "greeting", "instructions", "transport", "provider", "language", "voice"]
    CASCADED_FORM_FIELDS = list(AgentVersion.CASCADED_FIELDS)

    class Meta:
        model = AgentVersion
        fields = ["caller_name", "greeting", "instructions", "language", "voice", "transport", "provider",
                  "relay_tts_provider", "relay_transcription_provider", "relay_speech_model", "relay_interruptible",
                  "relay_welcome_greeting_interruptible", "relay_preemptible", "relay_dtmf_detection",
                  *AgentVersion.CASCADED_FIELDS]
        widgets = {"greeting": forms.Textarea(attrs={"rows": 2}), "instructions": forms.Textarea(attrs={"rows": 6}),
                   "voice": forms.TextInput(attrs={"list": "relay-voices"}),
                   "relay_speech_model": forms.TextInput(attrs={"list": "relay-speech-models"})}
        help_texts = {
            "language": LANGUAGE_HELP + " ConversationRelay also takes multi (detect the caller's language).",
            "voice": "ConversationRelay: one of the text-to-speech provider's voices (pick from the list). "
                     "OpenAI Realtime: its voice name (e.g. alloy). Empty: the provider's default voice.",
            "relay_speech_model": "Empty: the provider's default (Deepgram nova-3-general, Google telephony).",
            "relay_welcome_greeting_interruptible": "The runtime speaks the greeting; empty: like Twilio's welcome "
                                                    "greeting, any input interrupts it.",
            "relay_preemptible": "Lets the agent's next reply stop the one still being spoken.",
            "relay_dtmf_detection": "Needed for key-press handover rules: Twilio reports keys only when this is on.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        blanks = {
            "relay_tts_provider": f"Twilio's default ({catalogue.DEFAULT_TTS_PROVIDER})",
            "relay_transcription_provider": f"Twilio's default ({catalogue.DEFAULT_TRANSCRIPTION_PROVIDER})",
            "relay_interruptible": "Twilio's default (any)",
            "relay_welcome_greeting_interruptible": "Twilio's default (any)",
        }
        for name, blank in blanks.items():
            self.fields[name].choices = [("", blank)] + list(self.fields[name].choices)[1:]
        for name in self.RELAY_FORM_FIELDS:
            self.fields[name].relay_only = True
        for name in self.CASCADED_FORM_FIELDS:
            self.fields[name].cascaded_only = True
        # The <Language> entries: a formset inside this form (posted by the page with its management form; a post
        # without one, e.g. from a script, keeps the stored entries).
        prefix = "relay_lang"
        if self.is_bound and f"{prefix}-TOTAL_FORMS" in self.data:
            self.languages = RelayLanguageFormSet(self.data, prefix=prefix)
        elif self.is_bound:
            self.languages = None
        else:
            self.languages = RelayLanguageFormSet(prefix=prefix, initial=list(self.instance.relay_languages or []))
        if not self.is_bound and self.instance.pk:
            self.initial["relay_hints_text"] = ", ".join(self.instance.relay_hints or [])
            self.initial["variables_text"] = ", ".join(self.instance.variables or [])
            self.initial["secrets_text"] = ", ".join(self.instance.secrets or [])
            if self.instance.scripted_answers:
                self.initial["scripted_answers_text"] = json.dumps(self.instance.scripted_answers, indent=2)
            if self.instance.handover_rules:
                self.initial["handover_rules_text"] = json.dumps(self.instance.handover_rules, indent=2)

    def voice_options(self):
        return catalogue.voice_choices()

    def speech_model_options(self):
        return catalogue.speech_model_choices()

    def general_fields(self):
        return [self[name] for name in self.GENERAL_FIELDS]

    def relay_fields(self):
        return [self[name] for name in self.RELAY_FORM_FIELDS]

    def cascaded_fields(self):
        return [self[name] for name in self.CASCADED_FORM_FIELDS]

    def other_fields(self):
        shown = set(self.GENERAL_FIELDS) | set(self.RELAY_FORM_FIELDS) | set(self.CASCADED_FORM_FIELDS)
        return [field for field in self if field.name not in shown]

    def clean_language(self):
        return _language_code(self.cleaned_data.get("language") or "")

    def clean_voice(self):
        return (self.cleaned_data.get("voice") or "").strip()

    def clean_relay_speech_model(self):
        return (self.cleaned_data.get("relay_speech_model") or "").strip()

    def clean_relay_hints_text(self):
        hints = [h.strip() for h in (self.cleaned_data.get("relay_hints_text") or "").split(",")]
        hints = list(dict.fromkeys(h for h in hints if h))
        if len(hints) > MAX_HINTS:
            raise forms.ValidationError(f"At most {MAX_HINTS} hints (this has {len(hints)}).")
        long = [h for h in hints if len(h) > MAX_HINT_CHARS]
        if long:
            raise forms.ValidationError(f"Each hint has at most {MAX_HINT_CHARS} characters: "
                                        f"shorten {long[0][:40]}….")
        return hints

    def clean_variables_text(self):
        return _names(self.cleaned_data["variables_text"], "variable")

    def clean_secrets_text(self):
        return _names(self.cleaned_data["secrets_text"], "secret")

    def _json_list(self, key, required_keys):
        text = (self.cleaned_data.get(key) or "").strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}")
        if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
            raise forms.ValidationError("Enter a JSON list of objects.")
        for i, item in enumerate(value, 1):
            missing = [k for k in required_keys if k not in item]
            if missing:
                raise forms.ValidationError(f"Item {i} lacks {', '.join(missing)}.")
        return value

    def clean_scripted_answers_text(self):
        rows = self._json_list("scripted_answers_text", ["keywords", "answer"])
        for i, row in enumerate(rows, 1):
            # Optional audio ConversationRelay plays after the answer: Twilio fetches it, so a public https URL.
            if "play" in row and not re.fullmatch(r"https://[^\s]+", str(row["play"])):
                raise forms.ValidationError(f"Item {i}: play must be an https:// URL of an audio file.")
        return rows

    def clean_handover_rules_text(self):
        rules = self._json_list("handover_rules_text", ["action"])
        for i, rule in enumerate(rules, 1):
            if not rule.get("keyword") and not rule.get("digit"):
                raise forms.ValidationError(f"Rule {i} needs a keyword or a digit.")
            digit = str(rule.get("digit", ""))
            if digit and not re.fullmatch(r"[0-9*#]", digit):
                raise forms.ValidationError(f"Rule {i}: the digit must be one of 0-9, * or #.")
        return rules

    # Providers that exchange text only (the runtime refuses them over Media Streams' raw audio).
    TEXT_ONLY_PROVIDERS = {AgentVersion.Provider.OPENAI_CHAT}

    def clean(self):
        data = super().clean()
        provider, transport = data.get("provider"), data.get("transport")
        if provider in self.TEXT_ONLY_PROVIDERS and transport == AgentVersion.Transport.MEDIA_STREAMS:
            self.add_error("provider", f"{AgentVersion.Provider(provider).label} works with text only: choose the "
                                       "ConversationRelay transport (Twilio speech), or OpenAI Realtime / Scripted "
                                       "for Media Streams.")
        if provider == AgentVersion.Provider.CASCADED:
            self._clean_cascaded(data)
        if transport == AgentVersion.Transport.CONVERSATION_RELAY:
            self._clean_relay(data)
        elif data.get("language") == catalogue.MULTI:
            self.add_error("language", "multi (automatic language detection) works with ConversationRelay only.")
        if self.languages is not None and not self.languages.is_valid():
            raise forms.ValidationError("Correct the language entries below.")
        return data

    def _clean_cascaded(self, data):
        """The cascaded pipeline runs on Media Streams' raw audio; each stage's model/voice belongs to its vendor."""
        if data.get("transport") == AgentVersion.Transport.CONVERSATION_RELAY:
            self.add_error("provider", "The cascaded provider does its own speech: choose the Media Streams transport "
                                       "(ConversationRelay has Twilio's speech options below).")
        for field, vendor_field in (("stt_model", "stt_vendor"), ("tts_model", "tts_vendor")):
            if data.get(field) and (data.get(vendor_field) or "offline") == "offline":
                self.add_error(field, "The offline stage has no model choice: leave it empty, or choose a vendor.")
            if data.get(field) and not re.fullmatch(r"[A-Za-z0-9._:/-]{1,64}", data[field]):
                self.add_error(field, "A model name has letters, digits and . _ : / - only.")
        if data.get("chat_model") and not re.fullmatch(r"[A-Za-z0-9._:/@-]{1,64}", data["chat_model"]):
            self.add_error("chat_model", "A model name has letters, digits and . _ : / @ - only.")
        voice = data.get("voice", "")
        if voice and (data.get("tts_vendor") or "offline") == "offline" and not re.fullmatch(r"[a-z-]{2,12}(\+[a-z0-9]+)?", voice):
            self.add_error("voice", "For the offline voice (espeak-ng) use a voice name such as en-us or en-us+klatt, "
                                    "or leave it empty.")

    def _clean_relay(self, data):
        """ConversationRelay's combinations Twilio refuses (it drops the call), told next to the field."""
        language = data.get("language") or ""
        tts = data.get("relay_tts_provider") or catalogue.DEFAULT_TTS_PROVIDER
        stt = data.get("relay_transcription_provider") or catalogue.DEFAULT_TRANSCRIPTION_PROVIDER
        model = data.get("relay_speech_model", "")
        default_note = "" if data.get("relay_tts_provider") else f"Twilio's default text-to-speech provider is {tts}. "
        problem = catalogue.voice_problem(provider=tts, voice=data.get("voice", ""), language=language)
        if problem and "voice" in data:
            self.add_error("voice", default_note + problem)
        problem = catalogue.speech_model_problem(provider=stt, model=model)
        if problem and "relay_speech_model" in data:
            self.add_error("relay_speech_model", problem)
        if language == catalogue.MULTI:
            self._add_multi_errors(self, "relay_", tts, stt, model)
        greeting = data.get("relay_welcome_greeting_interruptible") or ""
        replies = data.get("relay_interruptible") or catalogue.DEFAULT_INTERRUPTIBLE
        if greeting in (Interruptible.SPEECH, Interruptible.DTMF) and greeting != replies:
            self.add_error("relay_welcome_greeting_interruptible",
                           f"The agent speaks the greeting as text, and Twilio lets text be interrupted by any input "
                           f"or by none: {greeting} for the greeting works only when replies use {greeting} too. "
                           "Choose any or none, or the same as for replies.")
        rules = data.get("handover_rules_text") or []
        digits = [str(r.get("digit")) for r in rules if r.get("digit") not in (None, "")]
        if digits and not data.get("relay_dtmf_detection"):
            self.add_error("relay_dtmf_detection",
                           f"Your handover rules use key presses ({', '.join(digits)}): turn on DTMF detection, or "
                           "Twilio never tells the agent about them.")
        if self.languages is not None:
            self.languages.is_valid()  # cleans each entry; a bad one does not spare the others their checks
            for form in self.languages.forms:
                entry = getattr(form, "cleaned_data", None) or {}
                if entry.get("code"):
                    parent = {"voice": data.get("voice", ""), "model": model}
                    self._clean_language_entry(form, entry, parent, tts, stt)

    @staticmethod
    def _add_multi_errors(form, prefix, tts, stt, model):
        for key, message in catalogue.multi_problems(tts_provider=tts, transcription_provider=stt,
                                                     speech_model=model).items():
            form.add_error(prefix + key, message)

    def _clean_language_entry(self, form, entry, parent, tts_parent, stt_parent):
        """A <Language> entry inherits what it leaves empty from <ConversationRelay> (Twilio's rule)."""
        code = entry["code"]
        tts = entry.get("tts_provider") or tts_parent
        stt = entry.get("transcription_provider") or stt_parent
        voice, model = entry.get("voice", ""), entry.get("speech_model", "")
        if not voice and parent["voice"]:
            if tts != tts_parent:
                form.add_error("voice", f"The voice above ({parent['voice']}) is a {TtsProvider(tts_parent).label} "
                                        f"voice: choose a {TtsProvider(tts).label} voice for {code}.")
            else:
                problem = catalogue.voice_problem(provider=tts, voice=parent["voice"], language=code)
                if problem:
                    form.add_error("voice", f"It inherits the voice above. {problem}")
        elif voice:
            problem = catalogue.voice_problem(provider=tts, voice=voice, language=code)
            if problem:
                form.add_error("voice", problem)
        if not model and parent["model"] and stt != stt_parent:
            form.add_error("speech_model", f"The speech model above ({parent['model']}) is a "
                                           f"{TranscriptionProvider(stt_parent).label} one: choose a "
                                           f"{TranscriptionProvider(stt).label} model, or leave both empty.")
        elif model:
            problem = catalogue.speech_model_problem(provider=stt, model=model)
            if problem:
                form.add_error("speech_model", problem)
        if code == catalogue.MULTI:
            self._add_multi_errors(form, "", tts, stt, model or (parent["model"] if stt == stt_parent else ""))

    def content(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["relay_hints"] = self.cleaned_data["relay_hints_text"]
        if self.languages is not None:
            data["relay_languages"] = self.languages.entries()
        data["variables"] = self.cleaned_data["variables_text"]
        data["secrets"] = self.cleaned_data["secrets_text"]
        data["scripted_answers"] = self.cleaned_data["scripted_answers_text"]
        data["handover_rules"] = self.cleaned_data["handover_rules_text"]
        return data


class HandoverActionForm(forms.ModelForm):
    class Meta:
        model = HandoverAction
        fields = ["type", "name", "destination", "description"]
        labels = {"type": "Handover type", "destination": "Destination phone number"}
        help_texts = {
            "name": "The name the agent chooses by, e.g. transfer_to_sales.",
            "destination": "With country code, e.g. +31201234567.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2}),
                   "destination": forms.TextInput(attrs={"type": "tel", "placeholder": "+31201234567"})}

    def __init__(self, *args, version=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version

    def clean_destination(self):
        return (self.cleaned_data.get("destination") or "").strip()

    def clean_name(self):
        name = (self.cleaned_data.get("name") or "").strip()
        if self.version is not None:
            qs = HandoverAction.objects.filter(version=self.version, name=name)
            if self.instance.pk:
                qs = qs.exclude(pk=self.instance.pk)
            if qs.exists():
                raise forms.ValidationError("This agent already has an action with this name.")
        return name

    def validate_unique(self):
        # The version is not a form field; uniqueness is checked in clean_name.
        pass


class SecretForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[name_validator])
    value = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False,
                            help_text="Write-only: shown masked after saving.")


class RecordingForm(forms.Form):
    recording_enabled = forms.BooleanField(required=False, label="Record calls",
                                           help_text="A dual-channel recording of every call (caller and agent).")
    recording_retention_days = forms.IntegerField(min_value=1, max_value=3650, label="Keep recordings (days)")


class VariableForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[name_validator])
    value = forms.CharField(required=False, widget=forms.TextInput)


class AuthConnectorForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[identifier_validator], help_text="e.g. crm_api")
    kind = forms.ChoiceField(choices=AuthConnector.Kind.choices, label="Type")
    header_name = forms.CharField(required=False, help_text="API key header: the header's name, e.g. X-Api-Key.")
    username = forms.CharField(required=False, help_text="Basic auth: the user name.")
    token_url = forms.URLField(required=False, assume_scheme="https", help_text="OAuth2: the token endpoint.")
    client_id = forms.CharField(required=False, help_text="OAuth2: the client ID.")
    scope = forms.CharField(required=False, help_text="OAuth2: scopes, space-separated (optional).")
    secret = forms.CharField(required=False, strip=False, widget=forms.PasswordInput(render_value=False),
                             help_text="API key, token, password or client secret. Write-only; leave empty to keep.")

    REQUIRED = {
        AuthConnector.Kind.API_KEY_HEADER: ["header_name"],
        AuthConnector.Kind.BASIC: ["username"],
        AuthConnector.Kind.OAUTH2_CLIENT_CREDENTIALS: ["token_url", "client_id"],
    }

    def __init__(self, *args, instance=None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {"name": instance.name, "kind": instance.kind, **instance.config}
        super().__init__(*args, **kwargs)
        if instance is None:
            self.fields["secret"].required = True

    def clean(self):
        data = super().clean()
        for key in self.REQUIRED.get(data.get("kind"), []):
            if not data.get(key):
                self.add_error(key, "Required for this type.")
        return data

    def config(self) -> dict:
        return {k: self.cleaned_data.get(k) for k in ("header_name", "username", "token_url", "client_id", "scope")}


class TestScenarioForm(forms.Form):
    """A scenario as people write it: the caller's turns one per line, and the expectations as plain fields."""

    __test__ = False

    name = forms.CharField(max_length=120)
    caller_turns = forms.CharField(label="What the caller says", widget=forms.Textarea(attrs={"rows": 4}),
                                   help_text="One turn per line, in order.")
    action_called = forms.CharField(label="Calls the action", required=False, max_length=64,
                                    help_text="The name of one of the version's actions (a handover or an API action).")
    action_arguments = forms.CharField(label="…with arguments", required=False, max_length=500,
                                       help_text="name=value, one per line (only for API actions).",
                                       widget=forms.Textarea(attrs={"rows": 2}))
    reply_contains = forms.CharField(label="A reply contains", required=False, max_length=200,
                                     help_text="Words, comma-separated: each must appear in some reply.")
    reply_not_contains = forms.CharField(label="No reply contains", required=False, max_length=200,
                                         help_text="Words, comma-separated: none may appear in any reply.")
    ended = forms.BooleanField(label="The call ends (handover or hang-up)", required=False)
    max_turns = forms.IntegerField(label="At most this many agent turns", required=False, min_value=1, max_value=50)

    MAX_TURNS = 20

    def __init__(self, *args, scenario=None, **kwargs):
        if scenario is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(scenario)
        super().__init__(*args, **kwargs)

    @staticmethod
    def initial_for(scenario) -> dict:
        from agents.models import TestScenario

        initial = {"name": scenario.name, "caller_turns": "\n".join(scenario.caller_turns)}
        words = {TestScenario.Expect.REPLY_CONTAINS: [], TestScenario.Expect.REPLY_NOT_CONTAINS: []}
        for e in scenario.expectations:
            kind = e.get("kind")
            if kind == TestScenario.Expect.ACTION_CALLED:
                initial["action_called"] = e.get("value", "")
                initial["action_arguments"] = "\n".join(f"{k}={v}" for k, v in (e.get("arguments") or {}).items())
            elif kind in words:
                words[kind].append(str(e.get("value", "")))
            elif kind == TestScenario.Expect.ENDED:
                initial["ended"] = True
            elif kind == TestScenario.Expect.MAX_TURNS:
                initial["max_turns"] = e.get("value")
        initial["reply_contains"] = ", ".join(words[TestScenario.Expect.REPLY_CONTAINS])
        initial["reply_not_contains"] = ", ".join(words[TestScenario.Expect.REPLY_NOT_CONTAINS])
        return initial

    def clean_caller_turns(self):
        turns = [line.strip() for line in self.cleaned_data["caller_turns"].splitlines() if line.strip()]
        if not turns:
            raise forms.ValidationError("Write at least one thing the caller says.")
        if len(turns) > self.MAX_TURNS:
            raise forms.ValidationError(f"At most {self.MAX_TURNS} caller turns.")
        if any(len(t) > 2000 for t in turns):
            raise forms.ValidationError("A turn is at most 2,000 characters.")
        return turns

    def clean_action_arguments(self):
        arguments = {}
        for line in self.cleaned_data["action_arguments"].splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name.strip()):
                raise forms.ValidationError(f"Write each argument as name=value (not “{line.strip()}”).")
            arguments[name.strip()] = value.strip()
        return arguments

    def clean(self):
        data = super().clean()
        if data.get("action_arguments") and not data.get("action_called"):
            self.add_error("action_arguments", "Name the action these arguments are for.")
        return data

    def expectations(self) -> list[dict]:
        from agents.models import TestScenario

        data, out = self.cleaned_data, []
        if data.get("action_called"):
            out.append({"kind": TestScenario.Expect.ACTION_CALLED.value, "value": data["action_called"].strip(),
                        "arguments": data.get("action_arguments") or {}})
        for field, kind in (("reply_contains", TestScenario.Expect.REPLY_CONTAINS),
                            ("reply_not_contains", TestScenario.Expect.REPLY_NOT_CONTAINS)):
            for word in (w.strip() for w in data.get(field, "").split(",")):
                if word:
                    out.append({"kind": kind.value, "value": word})
        if data.get("ended"):
            out.append({"kind": TestScenario.Expect.ENDED.value})
        if data.get("max_turns"):
            out.append({"kind": TestScenario.Expect.MAX_TURNS.value, "value": data["max_turns"]})
        return out


class TestRunForm(forms.Form):
    """Which version and environment a suite runs against (choices: this agent's, this workspace's)."""

    __test__ = False

    version = forms.ChoiceField()
    environment = forms.ChoiceField()

    def __init__(self, *args, versions, environments, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(v.pk, v.label) for v in versions]
        self.fields["environment"].choices = [(e.pk, str(e)) for e in environments]
