import json
import re
from dataclasses import dataclass

from django import forms

from agents import catalogue, options
from agents.catalogue import Interruptible, TranscriptionProvider, TtsProvider
from agents.models import (
    NAME_RE,
    AgentVersion,
    ApiAction,
    AuthConnector,
    HandoverAction,
    identifier_validator,
    name_validator,
)

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


ANALYSIS_TYPE_CHOICES = [("text", "Text"), ("number", "Number"), ("boolean", "Yes / no"), ("enum", "One of (enum)")]
MAX_ENUM_VALUES = 50


class AnalysisFieldForm(forms.Form):
    """One structured field of the post-call analysis (a row; an empty row or a ticked Remove drops it)."""

    name = forms.CharField(label="Name", required=False, max_length=64,
                           widget=forms.TextInput(attrs={"placeholder": "order_number"}))
    type = forms.ChoiceField(label="Type", choices=ANALYSIS_TYPE_CHOICES, initial="text", required=False)
    values = forms.CharField(label="Values (enum)", required=False, max_length=2000,
                             widget=forms.TextInput(attrs={"placeholder": "positive, neutral, negative"}))
    description = forms.CharField(label="Description", required=False, max_length=500)
    keywords = forms.CharField(label="Keywords (scripted)", required=False, max_length=500,
                               widget=forms.TextInput(attrs={"placeholder": "order, reference"}))

    def clean(self):
        data = super().clean()
        name = (data.get("name") or "").strip()
        values = list(dict.fromkeys(v.strip() for v in (data.get("values") or "").split(",") if v.strip()))
        keywords = list(dict.fromkeys(k.strip() for k in (data.get("keywords") or "").split(",") if k.strip()))
        data["name"], data["values"], data["keywords"] = name, values, keywords
        data["description"] = (data.get("description") or "").strip()
        data["type"] = data.get("type") or "text"
        if self.cleaned_data.get("DELETE") or not (name or values or keywords or data["description"]):
            data["empty"] = True
            return data
        if not name:
            self.add_error("name", "Give the field a name, e.g. order_number.")
        else:
            try:
                identifier_validator(name)
            except forms.ValidationError as exc:
                self.add_error("name", exc)
        if data.get("type") == "enum":
            if not values:
                self.add_error("values", "List the values it can take, comma-separated.")
            elif len(values) > MAX_ENUM_VALUES:
                self.add_error("values", f"At most {MAX_ENUM_VALUES} values.")
            elif any(len(v) > 100 for v in values):
                self.add_error("values", "Each value has at most 100 characters.")
        elif values:
            self.add_error("values", "Only an enum field takes values: choose the type “One of”, or clear them.")
        return data

    def entry(self) -> dict:
        d = self.cleaned_data
        entry = {"name": d["name"], "type": d["type"], "description": d["description"]}
        if d["type"] == "enum":
            entry["values"] = d["values"]
        if d["keywords"]:
            entry["keywords"] = d["keywords"]
        return entry


class BaseAnalysisFieldFormSet(forms.BaseFormSet):
    def clean(self):
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            name = data.get("name")
            if name and not data.get("empty"):
                if name in seen:
                    form.add_error("name", f"{name} is listed twice: each field needs its own name.")
                seen.add(name)

    def entries(self) -> list[dict]:
        return [f.entry() for f in self.forms
                if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("empty")]


def _analysis_initial(fields) -> list[dict]:
    return [{"name": f.get("name", ""), "type": f.get("type", "text"), "values": ", ".join(f.get("values") or []),
             "description": f.get("description", ""), "keywords": ", ".join(f.get("keywords") or [])}
            for f in fields or []]


AnalysisFieldFormSet = forms.formset_factory(
    AnalysisFieldForm, formset=BaseAnalysisFieldFormSet, extra=1, can_delete=True, max_num=30, validate_max=True,
    absolute_max=60,
)


DIGIT_CHOICES = [("", "—")] + [(d, d) for d in "0123456789*#"]


class ScriptedAnswerForm(forms.Form):
    """One scripted answer: when the caller says one of the keywords, the agent says the answer (and may play audio)."""

    keywords = forms.CharField(label="Keywords", required=False, max_length=500,
                               help_text="Comma-separated, e.g. hours, open.")
    answer = forms.CharField(label="Answer", required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    play = forms.CharField(label="Then play (optional)", required=False, max_length=500,
                           widget=forms.TextInput(attrs={"type": "url", "placeholder": "https://…/jingle.mp3"}),
                           help_text="ConversationRelay: an https:// URL of an audio file.")

    def clean_keywords(self):
        return list(dict.fromkeys(k.strip() for k in self.cleaned_data["keywords"].split(",") if k.strip()))

    def clean_play(self):
        play = self.cleaned_data["play"].strip()
        # Twilio fetches the audio itself, so a public https URL.
        if play and not re.fullmatch(r"https://[^\s]+", play):
            raise forms.ValidationError("Enter an https:// URL of an audio file.")
        return play

    def clean(self):
        data = super().clean()
        if self.errors or self.is_blank(data):
            return data
        if not data.get("keywords"):
            self.add_error("keywords", "Enter at least one keyword for this answer.")
        if not data.get("answer", "").strip():
            self.add_error("answer", "Enter the answer the agent gives.")
        return data

    @staticmethod
    def is_blank(data) -> bool:
        return not (data.get("keywords") or (data.get("answer") or "").strip() or data.get("play"))

    def row(self) -> dict:
        data = self.cleaned_data
        row = {"keywords": data["keywords"], "answer": data["answer"].strip()}
        if data.get("play"):
            row["play"] = data["play"]
        return row


class HandoverRuleForm(forms.Form):
    """One scripted handover rule: a keyword or a key press hands the call over with one of the version's actions."""

    HANGUP = "hangup"

    keyword = forms.CharField(label="Keyword", required=False, max_length=100)
    digit = forms.ChoiceField(label="Key", required=False, choices=DIGIT_CHOICES)
    action = forms.ChoiceField(label="Action", required=False)
    # A rule that runs an API action: its fixed parameters, the field of the answer it speaks and what it says.
    parameters = forms.CharField(label="Parameters (API action)", required=False, max_length=2000,
                                 widget=forms.TextInput(attrs={"placeholder": '{"order_id": "42"}'}))
    field = forms.CharField(label="Field spoken", required=False, max_length=200,
                            widget=forms.TextInput(attrs={"placeholder": "/order/status"}))
    say = forms.CharField(label="Says", required=False, max_length=500,
                          widget=forms.TextInput(attrs={"placeholder": "Your order is {result}."}))
    error_say = forms.CharField(label="Says on failure", required=False, max_length=500)

    def clean_parameters(self):
        text = (self.cleaned_data.get("parameters") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError('Enter a JSON object of names to values, e.g. {"order_id": "42"}.')
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object of names to values, e.g. {"order_id": "42"}.')
        return value

    def clean_field(self):
        field = (self.cleaned_data.get("field") or "").strip()
        if field and not field.startswith("/"):
            raise forms.ValidationError('A JSON pointer such as "/order/status".')
        return field

    def __init__(self, *args, action_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.action_names = list(action_names) + [self.HANGUP]  # "hangup": built in, ends the call
        choices = [("", "Choose an action…")] + [(n, n) for n in action_names] + [(self.HANGUP, "Hang up (end the call)")]
        stored = (self.initial or {}).get("action")
        if stored and stored not in self.action_names:  # shown as it is, refused on save
            choices.append((stored, f"{stored} (no such action)"))
        if self.is_bound:
            posted = self.data.get(self.add_prefix("action"))
            if posted and posted not in dict(choices):
                choices.append((posted, f"{posted} (no such action)"))
        self.fields["action"].choices = choices

    def clean(self):
        data = super().clean()
        if self.errors or self.is_blank(data):
            return data
        action = data.get("action")
        if not action:
            self.add_error("action", "Choose the action this rule hands over with.")
        elif action not in self.action_names:
            self.add_error("action", f"This version has no action named {action}: add it on the Actions tab, "
                                     "or choose one of its actions.")
        if not (data.get("keyword") or "").strip() and not data.get("digit"):
            self.add_error("keyword", "Enter a keyword or choose a key.")
        return data

    @staticmethod
    def is_blank(data) -> bool:
        return not ((data.get("keyword") or "").strip() or data.get("digit") or data.get("action"))

    def row(self) -> dict:
        data = self.cleaned_data
        row = {}
        if data["keyword"].strip():
            row["keyword"] = data["keyword"].strip()
        if data["digit"]:
            row["digit"] = data["digit"]
        row["action"] = data["action"]
        if data.get("parameters"):
            row["parameters"] = data["parameters"]
        for key in ("field", "say", "error_say"):
            if (data.get(key) or "").strip():
                row[key] = data[key].strip()
        return row


class BaseRowFormSet(forms.BaseFormSet):
    """Rows edited in place: an empty row or one marked for removal is dropped."""

    def rows(self) -> list[dict]:
        out = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form.is_blank(data):
                continue
            out.append(form.row())
        return out


MAX_ROWS = 100
ScriptedAnswerFormSet = forms.formset_factory(ScriptedAnswerForm, formset=BaseRowFormSet, extra=1, can_delete=True,
                                              max_num=MAX_ROWS, validate_max=True, absolute_max=MAX_ROWS + 10)
HandoverRuleFormSet = forms.formset_factory(HandoverRuleForm, formset=BaseRowFormSet, extra=1, can_delete=True,
                                            max_num=MAX_ROWS, validate_max=True, absolute_max=MAX_ROWS + 10)


def bound_rows(form, formset, *, prefix: str, initial, **kwargs):
    """The one rule for rows edited inside a form: unbound, the stored rows (`initial()`); bound, the posted rows
    when the post carries the formset's management form; None when it does not (a post from a script keeps the
    stored rows)."""
    if not form.is_bound:
        return formset(prefix=prefix, initial=initial(), **kwargs)
    if f"{prefix}-TOTAL_FORMS" in form.data:
        return formset(form.data, prefix=prefix, **kwargs)
    return None


def _answers_initial(rows) -> list[dict]:
    return [{"keywords": ", ".join(str(k) for k in (r.get("keywords") or [])), "answer": r.get("answer", ""),
             "play": r.get("play", "")} for r in (rows or []) if isinstance(r, dict)]


def _rules_initial(rows) -> list[dict]:
    return [{"keyword": r.get("keyword", ""), "digit": str(r.get("digit", "") or ""), "action": r.get("action", ""),
             "parameters": json.dumps(r["parameters"]) if r.get("parameters") else "",
             "field": r.get("field", ""), "say": r.get("say", ""), "error_say": r.get("error_say", "")}
            for r in (rows or []) if isinstance(r, dict)]


@dataclass(frozen=True)
class RowEditor:
    """How a version option declared with edit=ROWS (agents.options) is edited: a formset under `prefix`."""

    prefix: str
    formset: type
    initial: object  # stored value -> the formset's initial rows
    value: object  # valid formset -> the value stored
    error: str  # the form's message when a row is wrong
    action_names: bool = False  # the formset's rows choose among the version's actions


ROW_EDITORS = {
    "scripted_answers": RowEditor("answers", ScriptedAnswerFormSet, _answers_initial, lambda rows: rows.rows(),
                                  "Correct the scripted answers or handover rules below."),
    "handover_rules": RowEditor("rules", HandoverRuleFormSet, _rules_initial, lambda rows: rows.rows(),
                                "Correct the scripted answers or handover rules below.", action_names=True),
    "relay_languages": RowEditor("relay_lang", RelayLanguageFormSet, lambda v: list(v or []),
                                 lambda rows: rows.entries(), "Correct the language entries below."),
    "analysis_fields": RowEditor("analysis_field", AnalysisFieldFormSet, _analysis_initial,
                                 lambda rows: rows.entries(), "Correct the post-call fields below."),
}


class AgentVersionForm(forms.ModelForm):
    """The draft's fields, group by group as agents.options declares them. Lists are typed comma-separated
    (`<name>_text`); rows (scripted answers, handover rules, languages, post-call fields) are formsets
    (ROW_EDITORS)."""

    variables_text = forms.CharField(label="Variables it uses", required=False,
                                     help_text="Names, comma-separated (e.g. COMPANY_NAME, OPENING_HOURS).")
    secrets_text = forms.CharField(label="Secrets it needs", required=False,
                                   help_text="Names, comma-separated (e.g. OPENAI_API_KEY).")
    relay_hints_text = forms.CharField(
        label="Speech recognition hints", required=False, max_length=MAX_HINTS * (MAX_HINT_CHARS + 2),
        help_text=f"Words or phrases callers may say (product names, jargon), comma-separated; at most {MAX_HINTS}.")

    class Meta:
        model = AgentVersion
        fields = [o.name for o in options.OPTIONS.values() if o.edit == options.FIELD]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for option in options.OPTIONS.values():
            if option.edit == options.ROWS:
                continue
            field = self.fields[option.form_name]
            if option.help:
                field.help_text = option.help
            if option.textarea:
                field.widget = forms.Textarea(attrs={"rows": option.textarea})
            if option.datalist:
                field.widget.attrs["list"] = option.datalist
            if option.blank and getattr(field, "choices", None):
                field.choices = [("", option.blank)] + [c for c in field.choices if c[0] != ""]
            if option.edit == options.LIST and not self.is_bound and self.instance.pk:
                self.initial[option.form_name] = ", ".join(str(v) for v in getattr(self.instance, option.name) or [])
        self.fields["machine_action"].required = False  # absent from a post: hang up (the model's default)
        self.fields["voicemail_source"].required = False  # absent from a post: the message (the model's default)
        self.action_names = ([*self.instance.actions.values_list("name", flat=True),
                              *self.instance.api_actions.values_list("name", flat=True)] if self.instance.pk else [])
        self.rows = {}
        for name, editor in ROW_EDITORS.items():
            kwargs = {"form_kwargs": {"action_names": self.action_names}} if editor.action_names else {}
            self.rows[name] = bound_rows(self, editor.formset, prefix=editor.prefix,
                                         initial=lambda e=editor, n=name: e.initial(getattr(self.instance, n)),
                                         **kwargs)
        self.fields["provider"].help_text = " ".join(
            filter(None, (catalogue.provider_needs_text(value, label) for value, label in AgentVersion.Provider.choices)))

    # The row editors by the names the templates use.
    languages = property(lambda self: self.rows["relay_languages"])
    analysis = property(lambda self: self.rows["analysis_fields"])
    answers = property(lambda self: self.rows["scripted_answers"])
    rules = property(lambda self: self.rows["handover_rules"])

    def rows_value(self, name):
        """The posted rows of `name` when valid, else the stored ones."""
        rows = self.rows[name]
        if rows is not None and rows.is_valid():
            return ROW_EDITORS[name].value(rows)
        return getattr(self.instance, name)

    def handover_rules(self) -> list[dict]:
        """The rules as saved (posted rows when valid, else the stored ones)."""
        return list(self.rows_value("handover_rules") or [])

    def voice_options(self):
        return catalogue.voice_choices()

    def speech_model_options(self):
        return catalogue.speech_model_choices()

    @property
    def option_fields(self) -> dict:
        """Each option group's form fields (not its rows), by group key, in declaration order."""
        return {g.key: [self[o.form_name] for o in g.options if o.edit != options.ROWS] for g in options.GROUPS}

    @property
    def option_groups(self) -> dict:
        return options.GROUPS_BY_KEY

    def other_fields(self):
        shown = {o.form_name for o in options.OPTIONS.values()}
        return [field for field in self if field.name not in shown]

    def clean_voicemail_source(self):
        return self.cleaned_data.get("voicemail_source") or AgentVersion.VoicemailSource.MESSAGE

    def clean_machine_action(self):
        # Absent from a post (an older page, a test): a machine is hung up on, the model's default.
        return self.cleaned_data.get("machine_action") or AgentVersion.MachineAction.HANG_UP

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

    def clean(self):
        data = super().clean()
        provider, transport = data.get("provider"), data.get("transport")
        if provider:
            problem = catalogue.provider_transport_problem(
                provider=provider, label=dict(AgentVersion.Provider.choices).get(provider, provider), transport=transport)
            if problem:
                self.add_error("provider", problem)
        if provider == AgentVersion.Provider.CASCADED:
            self._clean_cascaded(data)
        if data.get("chat_model") and not re.fullmatch(r"[A-Za-z0-9._:/@-]{1,64}", data["chat_model"]):
            self.add_error("chat_model", "A model name has letters, digits and . _ : / @ - only.")
        if transport == AgentVersion.Transport.CONVERSATION_RELAY:
            self._clean_relay(data)
        elif data.get("language") == catalogue.MULTI:
            self.add_error("language", "multi (automatic language detection) works with ConversationRelay only.")
        # Last: the checks above may add errors to rows.
        for message in dict.fromkeys(editor.error for name, editor in ROW_EDITORS.items()
                                     if self.rows[name] is not None and not self.rows[name].is_valid()):
            self.add_error(None, message)
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
        rules = self.handover_rules()
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
        """The version's fields as saved: every option (agents.options); rows a post did not carry are kept."""
        data = {}
        for option in options.OPTIONS.values():
            if option.edit == options.ROWS:
                if self.rows[option.name] is not None:
                    data[option.name] = ROW_EDITORS[option.name].value(self.rows[option.name])
            else:
                data[option.name] = self.cleaned_data[option.form_name]
        data["analysis_success"] = (data.get("analysis_success") or "").strip()
        return data


class HandoverActionForm(forms.ModelForm):
    more_destinations = forms.CharField(
        label="More numbers to try (warm only)", required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. +31 20 123 4568, +31 20 123 4569"}),
        help_text="Comma-separated; rung in order when the first number declines, is busy, does not answer or "
                  "is an answering machine.")
    reps = forms.TypedMultipleChoiceField(
        label="Team of reps (dialer reps only)", required=False, coerce=int, widget=forms.CheckboxSelectMultiple,
        help_text="The members whose browser dialer rings; none ticked: every rep online in the dialer.")

    class Meta:
        model = HandoverAction
        fields = ["type", "kind", "name", "destination", "more_destinations", "hold_message", "target_agent",
                  "target_version_number", "target_environment", "description"]
        labels = {"type": "Handover type", "destination": "Destination phone number"}
        help_texts = {
            "name": "The name the agent chooses by, e.g. transfer_to_sales.",
            "destination": "e.g. +31 20 123 4567, or a number of the workspace's country without its code.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2}),
                   "kind": forms.RadioSelect,
                   "destination": forms.TextInput(attrs={"type": "tel", "placeholder": "e.g. +31 20 123 4567"})}

    def __init__(self, *args, version=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version
        self.fields["kind"].required = False  # not posted: cold, as before warm transfers existed
        self.fields["destination"].required = False  # another-agent handovers have none (checked in clean)
        agent = getattr(version, "agent", None)
        if agent is not None:
            from workspaces.models import Membership

            members = (Membership.objects.filter(workspace_id=agent.workspace_id).select_related("user")
                       .order_by("user__email"))
            self.fields["reps"].choices = [(m.user_id, m.user.get_full_name() or m.user.email) for m in members]
            self.fields["target_agent"].queryset = type(agent).objects.filter(
                workspace_id=agent.workspace_id).exclude(pk=agent.pk).order_by("name")
            self.fields["target_environment"].queryset = self.fields["target_environment"].queryset.filter(
                workspace_id=agent.workspace_id)
        if self.instance.pk and not self.is_bound:
            self.initial["more_destinations"] = ", ".join(self.instance.more_destinations or [])
            self.initial["reps"] = list(self.instance.reps or [])

    def _e164(self, raw: str) -> str:
        from telephony.numbering import InvalidNumber, to_e164

        workspace = getattr(getattr(self.version, "agent", None), "workspace", None)
        try:
            return to_e164(raw.strip(), default_country=getattr(workspace, "default_country", "") or "US")
        except InvalidNumber as exc:
            raise forms.ValidationError(f"{raw.strip()}: {exc}" if raw.strip() else str(exc)) from None

    def clean_destination(self):
        """Typed the way people write numbers ("+31 20 123 4568", "(512) 555-0100"): stored as E.164, read in the
        workspace's country when it has no country code (the same parsing as the browser dialer's)."""
        raw = self.cleaned_data.get("destination") or ""
        return self._e164(raw) if raw.strip() else ""

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or HandoverAction.Kind.COLD

    def clean_more_destinations(self) -> list[str]:
        raw = self.cleaned_data.get("more_destinations") or ""
        numbers = list(dict.fromkeys(self._e164(part) for part in raw.replace("\n", ",").split(",") if part.strip()))
        if len(numbers) > HandoverAction.MAX_MORE_DESTINATIONS:
            raise forms.ValidationError(f"At most {HandoverAction.MAX_MORE_DESTINATIONS} more numbers.")
        return numbers

    def clean(self):
        data = super().clean()
        if data.get("kind") != HandoverAction.Kind.WARM and data.get("more_destinations"):
            self.add_error("more_destinations", "Only a warm handover tries more numbers: choose Warm, or clear them.")
        if data.get("kind") != HandoverAction.Kind.REPS:
            data["reps"] = []
        if data.get("kind") == HandoverAction.Kind.AGENT:
            if not data.get("target_agent"):
                self.add_error("target_agent", "Choose the agent who takes the call.")
            data["destination"] = ""
        elif data.get("kind") == HandoverAction.Kind.REPS:  # rings browsers, not a number
            data["destination"] = ""
            data["target_agent"], data["target_version_number"], data["target_environment"] = None, None, None
        else:
            if "destination" in data and not data.get("destination") and "destination" not in self.errors:
                self.add_error("destination", "Enter the phone number the call goes to.")
            data["target_agent"], data["target_version_number"], data["target_environment"] = None, None, None
        return data

    def clean_name(self):
        name = (self.cleaned_data.get("name") or "").strip()
        if self.version is not None:
            qs = HandoverAction.objects.filter(version=self.version, name=name)
            if self.instance.pk:
                qs = qs.exclude(pk=self.instance.pk)
            if qs.exists() or ApiAction.objects.filter(version=self.version, name=name).exists():
                raise forms.ValidationError("This agent already has an action with this name.")
        return name

    def validate_unique(self):
        # The version is not a form field; uniqueness is checked in clean_name.
        pass


PARAMETER_TYPE_CHOICES = [("string", "Text (string)"), ("number", "Number"), ("integer", "Whole number (integer)"),
                          ("boolean", "Yes / no (boolean)"), ("enum", "One of (enum)")]
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


def _comma_list(text: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (text or "").split(",") if v.strip()))


class ApiParameterForm(forms.Form):
    """One parameter of an API action (what the agent fills in): a row; an empty row or a ticked Remove drops it."""

    name = forms.CharField(label="Name", required=False, max_length=64,
                           widget=forms.TextInput(attrs={"placeholder": "order_id"}))
    type = forms.ChoiceField(label="Type", choices=PARAMETER_TYPE_CHOICES, initial="string", required=False)
    enum = forms.CharField(label="Values (enum)", required=False, max_length=2000,
                           widget=forms.TextInput(attrs={"placeholder": "standard, express"}))
    required = forms.BooleanField(label="Required", required=False)
    description = forms.CharField(label="Description", required=False, max_length=500,
                                  widget=forms.TextInput(attrs={"placeholder": "The order number"}))

    def clean(self):
        from agents.action_requests import PARAM_NAME_RE

        data = super().clean()
        data["name"] = (data.get("name") or "").strip()
        data["description"] = (data.get("description") or "").strip()
        data["enum"] = _comma_list(data.get("enum"))
        data["type"] = data.get("type") or "string"
        if self.is_blank(data):
            return data
        if not data["name"]:
            self.add_error("name", "Give the parameter a name, e.g. order_id.")
        elif not PARAM_NAME_RE.match(data["name"]):
            self.add_error("name", "Lowercase letters, digits and underscores, starting with a letter (e.g. order_id).")
        if data["type"] == "enum":
            if not data["enum"]:
                self.add_error("enum", "List the values it can take, comma-separated.")
            elif len(data["enum"]) > MAX_ENUM_VALUES:
                self.add_error("enum", f"At most {MAX_ENUM_VALUES} values.")
        elif data["enum"]:
            self.add_error("enum", "Only an enum parameter takes values: choose the type “One of”, or clear them.")
        return data

    @staticmethod
    def is_blank(data) -> bool:
        return not (data.get("name") or data.get("enum") or data.get("description"))

    def row(self) -> dict:
        d = self.cleaned_data
        row = {"name": d["name"], "type": d["type"], "required": bool(d.get("required")), "description": d["description"]}
        if d["type"] == "enum":
            row["enum"] = d["enum"]
        return row


class BaseApiParameterFormSet(BaseRowFormSet):
    def clean(self):
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or form.is_blank(data) or not data.get("name"):
                continue
            name = data["name"]
            if name in seen:
                form.add_error("name", f"{name} is listed twice: each parameter needs its own name.")
            seen.add(name)

    def names(self) -> list[str]:
        """The names of the rows kept (also while another row has an error: templates are checked against them)."""
        return list(dict.fromkeys(
            data["name"] for form in self.forms if (data := getattr(form, "cleaned_data", None))
            and not data.get("DELETE") and not form.is_blank(data) and data.get("name")))


class KeyValueForm(forms.Form):
    """One header or query parameter of an API action: a name and a value template."""

    key = forms.CharField(label="Name", required=False, max_length=200)
    value = forms.CharField(label="Value", required=False, max_length=2000, strip=False)

    def __init__(self, *args, kind="query", **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        placeholders = {"header": ("e.g. Accept", "e.g. application/json"), "query": ("e.g. order", "e.g. {order_id}")}[kind]
        self.fields["key"].widget.attrs["placeholder"], self.fields["value"].widget.attrs["placeholder"] = placeholders

    def clean(self):
        data = super().clean()
        data["key"] = (data.get("key") or "").strip()
        data["value"] = (data.get("value") or "").strip(" \t")
        if self.is_blank(data):
            return data
        if not data["key"]:
            self.add_error("key", "Enter the header's name." if self.kind == "header" else "Enter the parameter's name.")
        elif self.kind == "header" and not HEADER_NAME_RE.match(data["key"]):
            self.add_error("key", "A header name is letters, digits and - (e.g. X-Request-Id).")
        return data

    @staticmethod
    def is_blank(data) -> bool:
        return not (data.get("key") or data.get("value"))

    def row(self) -> dict:
        return {"key": self.cleaned_data["key"], "value": self.cleaned_data["value"]}


class BaseKeyValueFormSet(BaseRowFormSet):
    def clean(self):
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or form.is_blank(data) or not data.get("key"):
                continue
            key = data["key"]
            folded = key.lower() if form.kind == "header" else key  # header names ignore case
            if folded in seen:
                form.add_error("key", f"{key} is listed twice.")
            seen.add(folded)

    def mapping(self) -> dict:
        return {row["key"]: row["value"] for row in self.rows()}


MAX_API_ROWS = 30
ApiParameterFormSet = forms.formset_factory(ApiParameterForm, formset=BaseApiParameterFormSet, extra=1,
                                            can_delete=True, max_num=MAX_API_ROWS, validate_max=True,
                                            absolute_max=MAX_API_ROWS + 10)
KeyValueFormSet = forms.formset_factory(KeyValueForm, formset=BaseKeyValueFormSet, extra=1, can_delete=True,
                                        max_num=MAX_API_ROWS, validate_max=True, absolute_max=MAX_API_ROWS + 10)


def _pairs_initial(mapping) -> list[dict]:
    return [{"key": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in (mapping or {}).items()]


class OptionalJSONField(forms.JSONField):
    """A JSON field that shows nothing (not the word null) when there is no value."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class ApiActionForm(forms.ModelForm):
    """An API request action: templates and parameters are checked here, with a message next to the field (or
    row). Parameters, headers and query are row formsets (`parameter_rows`, `header_rows`, `query_rows`); a post
    without a formset's management form (a script) keeps what is stored."""

    ROWS = {"parameters": ("param", ApiParameterFormSet), "headers": ("header", KeyValueFormSet),
            "query": ("query", KeyValueFormSet)}
    FIELDS_BEFORE_ROWS = ["name", "description", "wait_message", "method", "url"]

    class Meta:
        model = ApiAction
        fields = ["name", "description", "wait_message", "method", "url", "body",
                  "auth_connector", "timeout_seconds", "max_response_bytes", "result_pointer", "result_max_chars"]
        labels = {"timeout_seconds": "Timeout (seconds)", "max_response_bytes": "Largest answer (bytes)",
                  "result_max_chars": "Answer given to the agent (characters at most)",
                  "result_pointer": "Part of the answer (JSON pointer)"}
        field_classes = {"body": OptionalJSONField}
        help_texts = {
            "name": "The tool name the agent calls, e.g. order_status.",
            "url": "https://… — may use {VARIABLE} (the environment's variables, in capitals) and {param} "
                   "(the parameters below).",
            "body": 'JSON body for POST/PUT/PATCH; a string that is exactly "{param}" keeps the parameter\'s type.',
            "timeout_seconds": "At most 15 seconds.",
            "max_response_bytes": "At most 65536 (64 KB); a larger answer is an error.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2}),
                   "body": forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                   "url": forms.TextInput(attrs={"class": "mono", "placeholder": "e.g. {API_BASE}/orders/{order_id}"})}

    def __init__(self, *args, version=None, auth_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version
        names = sorted(set(auth_names) | ({self.instance.auth_connector} if self.instance.auth_connector else set()))
        self.fields["auth_connector"] = forms.ChoiceField(
            label="Auth connector", required=False, choices=[("", "None")] + [(n, n) for n in names],
            help_text="An auth connector by name (each environment the agent runs in needs one of this name).")
        initial = {"parameters": [{**p, "enum": ", ".join(p.get("enum") or [])} for p in self.instance.parameters or []],
                   "headers": _pairs_initial(self.instance.headers), "query": _pairs_initial(self.instance.query)}
        self.rows = {}
        for field, (name, formset) in self.ROWS.items():
            kwargs = {} if field == "parameters" else {"form_kwargs": {"kind": name}}
            self.rows[field] = bound_rows(self, formset, prefix=self.add_prefix(name),
                                          initial=lambda f=field: initial[f], **kwargs)

    @property
    def parameter_rows(self):
        return self.rows["parameters"]

    @property
    def header_rows(self):
        return self.rows["headers"]

    @property
    def query_rows(self):
        return self.rows["query"]

    def fields_before_rows(self):
        return [self[name] for name in self.FIELDS_BEFORE_ROWS]

    def fields_after_rows(self):
        return [field for field in self if field.name not in self.FIELDS_BEFORE_ROWS]

    def clean_name(self):
        name = (self.cleaned_data.get("name") or "").strip()
        if self.version is not None:
            qs = ApiAction.objects.filter(version=self.version, name=name)
            if self.instance.pk:
                qs = qs.exclude(pk=self.instance.pk)
            if qs.exists() or HandoverAction.objects.filter(version=self.version, name=name).exists():
                raise forms.ValidationError("This agent already has an action with this name.")
        return name

    def _rows_value(self, field):
        """The stored value, or the posted rows' (None while a row has an error)."""
        rows = self.rows[field]
        if rows is None:
            return getattr(self.instance, field)
        if not rows.is_valid():
            return None
        return rows.rows() if field == "parameters" else rows.mapping()

    def _param_names(self) -> list[str]:
        rows = self.rows["parameters"]
        if rows is None:
            return [p["name"] for p in self.instance.parameters or [] if isinstance(p, dict) and p.get("name")]
        rows.is_valid()  # cleans each row, so a bad one does not hide the others' names
        return rows.names()

    def _check_pair_rows(self, field, params):
        """Each header or query row's templates, the message next to its name or its value."""
        from agents.action_requests import template_problems

        rows = self.rows[field]
        if rows is None:
            return
        rows.is_valid()  # cleans the rows first
        for form in rows.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or form.is_blank(data) or form.errors:
                continue
            for part, pair in (("key", {data["key"]: ""}), ("value", {"x": data["value"]})):
                problem = template_problems(url="", headers=pair if field == "headers" else {},
                                            query=pair if field == "query" else {}, body=None,
                                            parameters=params).get(field)
                if problem:
                    form.add_error(part, problem)
                    break

    def clean(self):
        from agents.action_requests import (
            TEMPLATE_RE,
            VARIABLE_NAME_RE,
            TemplateError,
            template_problems,
            validate_parameters,
        )
        from workspaces import outbound

        data = super().clean()
        params = [{"name": n} for n in self._param_names()]
        for field in ("headers", "query"):
            self._check_pair_rows(field, params)
        for field in self.ROWS:
            data[field] = self._rows_value(field)
        bad_rows = [label for field, label in (("parameters", "parameters"), ("headers", "headers"),
                                               ("query", "query parameters")) if data[field] is None]
        if bad_rows:
            self.add_error(None, f"Correct the {' and '.join(bad_rows)} below.")
        if any(f in self.errors for f in ("url", "body")):
            return data
        problems = template_problems(url=data.get("url") or "", headers=None, query=None, body=data.get("body"),
                                     parameters=params)
        for field_name, problem in problems.items():
            self.add_error(field_name, problem)
        if not problems:
            url = data.get("url") or ""
            # A URL that starts with a variable is checked when it is used (the guard checks every request).
            first = TEMPLATE_RE.match(url)
            if not (first and first.group(1) and VARIABLE_NAME_RE.match(first.group(1).strip())):
                sample = TEMPLATE_RE.sub(lambda m: {"{{": "{", "}}": "}"}.get(m.group(0), "x"), url)
                reason = outbound.url_refusal(sample)
                if reason:
                    self.add_error("url", reason)
        if data["parameters"] is not None:
            try:
                data["parameters"] = validate_parameters(data["parameters"])
            except TemplateError as exc:  # stored parameters a post without rows kept
                self.add_error(None, str(exc))
        if data.get("body") is not None and data.get("method") == "GET":
            self.add_error("body", "A GET request has no body: choose POST, PUT or PATCH, or leave it empty.")
        return data

    def validate_unique(self):
        # The version is not a form field; uniqueness (across both action kinds) is checked in clean_name.
        pass

    def content(self) -> dict:
        return {f: self.cleaned_data[f] for f in ApiAction.CONTENT_FIELDS}


class ApiActionTryForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=None, empty_label=None)
    arguments = forms.JSONField(label="Sample parameters", required=False,
                                widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
                                help_text='JSON object, e.g. {"order_id": "42"}.')

    def __init__(self, *args, environments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments

    def clean_arguments(self):
        value = self.cleaned_data.get("arguments")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Enter a JSON object of parameter names to values.")
        return value


def _base_url_problem(data: dict) -> str | None:
    """A vendor base URL (OPENAI_BASE_URL, DEEPGRAM_BASE_URL…: any name ending in _BASE_URL) is a URL our calls
    connect to: checked by the outbound guard when saved, as it is again at connect time."""
    from workspaces import outbound

    name, value = data.get("name") or "", (data.get("value") or "").strip()
    if not catalogue.is_base_url_setting(name):
        return None
    if not value:
        return f"{name} is a vendor's base URL: enter an https:// URL."
    reason = outbound.url_refusal(value)
    return f"{name} is a vendor's base URL, and it cannot be used: {reason}" if reason else None


class SecretForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[name_validator])
    value = forms.CharField(widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                            strip=False,
                            help_text="Write-only: shown masked after saving.")

    def clean(self):
        data = super().clean()
        problem = _base_url_problem(data)
        if problem:
            self.add_error("value", problem)
        return data


class VoicemailRecordingForm(forms.Form):
    """The draft's voicemail recording (agents.voicemail checks its type and size)."""

    audio = forms.FileField(label="Voicemail recording",
                            help_text="MP3 or WAV; at most 5 MB. Played after the beep when the version leaves "
                                      "the recording.")


class RecordingForm(forms.Form):
    recording_enabled = forms.BooleanField(required=False, label="Record calls",
                                           help_text="A dual-channel recording of every call (caller and agent).")
    recording_retention_days = forms.IntegerField(min_value=1, max_value=3650, label="Keep recordings (days)")


class VariableForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[name_validator])
    value = forms.CharField(required=False, widget=forms.TextInput)

    def clean(self):
        data = super().clean()
        problem = _base_url_problem(data)
        if problem:
            self.add_error("value", problem)
        return data


class AuthConnectorForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[identifier_validator], help_text="e.g. crm_api")
    kind = forms.ChoiceField(choices=AuthConnector.Kind.choices, label="Type")
    header_name = forms.CharField(required=False, help_text="API key header: the header's name, e.g. X-Api-Key.")
    username = forms.CharField(required=False, help_text="Basic auth: the user name.")
    token_url = forms.URLField(required=False, assume_scheme="https", help_text="OAuth2: the token endpoint.")
    client_id = forms.CharField(required=False, help_text="OAuth2: the client ID.")
    scope = forms.CharField(required=False, help_text="OAuth2: scopes, space-separated (optional).")
    secret = forms.CharField(required=False, strip=False,
                             widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
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

    def clean_token_url(self):
        """The token endpoint is a URL we connect to: the outbound guard's check when saved (and at connect)."""
        from workspaces import outbound

        url = (self.cleaned_data.get("token_url") or "").strip()
        reason = outbound.url_refusal(url) if url else None
        if reason:
            raise forms.ValidationError(reason)
        return url

    def clean(self):
        data = super().clean()
        for key in self.REQUIRED.get(data.get("kind"), []):
            if not data.get(key) and key not in self.errors:
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
