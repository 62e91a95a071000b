"""A version's options, declared once: each group (general, scripted rows, ConversationRelay, the cascaded stages,
post-call analysis) lists its fields, one row per field. Everything else derives from this list:

- `AgentVersion.CONTENT_FIELDS` (copied on publish, restore and a new draft; agents.services) and the per-group
  lists (`RELAY_FIELDS`, `CASCADED_FIELDS`, `CHAT_FIELDS`, `ANALYSIS_FIELDS`);
- the version form (agents.forms.AgentVersionForm: Meta.fields, help texts, empty choices, the fieldset per group);
- the version page (version_detail.html shows every group, each field as `value_text` reads it);
- the publish diff (agents.selectors.version_diff, field by field in declaration order).

To add a field to a group: add the model field (and its migration), then one `Option` row here with an `example`
(a valid, non-default value: tests/agents/test_options.py sets it and checks the form, the page, the diff and the
copy on publish). A plain field (choice, text, yes/no) needs nothing else. A list typed as comma-separated text
takes `edit=LIST`; a field edited as rows (`edit=ROWS`) also needs its row editor in agents.forms.ROW_EDITORS and a
line function in `ROW_LINES` below.

This module imports no model (agents.models imports it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agents import catalogue

FIELD, LIST, ROWS = "field", "list", "rows"


@dataclass(frozen=True)
class Option:
    name: str  # the AgentVersion field
    example: object  # a valid non-default value (the tests set it and look for it everywhere)
    edit: str = FIELD  # FIELD: the model form field; LIST: comma-separated text `<name>_text`; ROWS: a row editor
    help: str = ""  # the form's help text (empty: the model field's)
    blank: str = ""  # what an empty value means: the form's empty choice and the page's text for it
    datalist: str = ""  # id of a <datalist> of suggestions for the text input
    textarea: int = 0  # rows of a textarea (0: the default widget)

    @property
    def form_name(self) -> str:
        """The form field that edits it (rows are edited by their own formset, not a form field)."""
        return f"{self.name}_text" if self.edit == LIST else self.name


@dataclass(frozen=True)
class OptionGroup:
    key: str
    legend: str
    help: str
    options: tuple[Option, ...]
    # When the version uses the group: (field, values it takes); None: always. The page says when it is not used.
    used_when: tuple[str, tuple[str, ...]] | None = None
    unused_note: str = ""
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(o.name for o in self.options))

    def used_by(self, version) -> bool:
        return self.used_when is None or getattr(version, self.used_when[0], None) in self.used_when[1]


TWILIO_DEFAULT = "Twilio's default"

GROUPS: tuple[OptionGroup, ...] = (
    OptionGroup("general", "Agent", "", (
        Option("caller_name", "Acme Support"),
        Option("greeting", "Hello from Acme.", textarea=2),
        Option("instructions", "Be brief and friendly.", textarea=6),
        Option("transport", "conversation_relay"),
        Option("provider", "openai_chat"),
        Option("language", "nl-NL",
               help="A BCP-47 code such as en-US, nl-NL or pt-BR. ConversationRelay also takes multi (detect the "
                    "caller's language)."),
        Option("voice", "en-US-Journey-O", blank="the provider's default voice", datalist="relay-voices",
               help="ConversationRelay: one of the text-to-speech provider's voices (pick from the list). "
                    "OpenAI Realtime: its voice name (e.g. alloy). Empty: the provider's default voice."),
        Option("variables", ["COMPANY_NAME"], edit=LIST),
        Option("secrets", ["OPENAI_API_KEY"], edit=LIST),
    )),
    OptionGroup("scripted", "Scripted answers and handover rules",
                "When the caller says a keyword (or presses a key), the agent answers or hands the call over.", (
        Option("scripted_answers", [{"keywords": ["hours"], "answer": "Nine to five."}], edit=ROWS),
        Option("handover_rules", [{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}], edit=ROWS),
    )),
    OptionGroup("relay", "ConversationRelay speech (Twilio)",
                "Used when the transport is ConversationRelay: Twilio recognises the caller's speech and speaks the "
                "agent's replies. Empty fields take Twilio's defaults.", (
        Option("relay_tts_provider", "Google", blank=f"{TWILIO_DEFAULT} ({catalogue.DEFAULT_TTS_PROVIDER})"),
        Option("relay_transcription_provider", "Google",
               blank=f"{TWILIO_DEFAULT} ({catalogue.DEFAULT_TRANSCRIPTION_PROVIDER})"),
        Option("relay_speech_model", "telephony_short", datalist="relay-speech-models",
               blank="the provider's default model",
               help="Empty: the provider's default (Deepgram nova-3-general, Google telephony)."),
        Option("relay_interruptible", "speech", blank=f"{TWILIO_DEFAULT} ({catalogue.DEFAULT_INTERRUPTIBLE})"),
        Option("relay_welcome_greeting_interruptible", "none", blank=f"{TWILIO_DEFAULT} (any)",
               help="The runtime speaks the greeting; empty: like Twilio's welcome greeting, any input interrupts "
                    "it."),
        Option("relay_preemptible", True, help="Lets the agent's next reply stop the one still being spoken."),
        Option("relay_dtmf_detection", True,
               help="Needed for key-press handover rules: Twilio reports keys only when this is on."),
        Option("relay_hints", ["Callwell"], edit=LIST),
        Option("relay_languages", [{"code": "de-DE", "voice": "de-DE-Journey-F"}], edit=ROWS),
    ), used_when=("transport", ("conversation_relay",)), unused_note="Not used: the transport is not ConversationRelay."),
    OptionGroup("cascaded", "Cascaded voice pipeline (Media Streams)",
                "Used when the provider is Cascaded: speech recognition, then the chat model (below), then "
                "text-to-speech, each from the vendor you choose. Empty fields: offline recognition and voice (no "
                "key). Each vendor's key comes from the environment's secrets "
                f"({', '.join(catalogue.VENDOR_SECRETS.values())}).", (
        Option("stt_vendor", "deepgram", blank=f"Default: {catalogue.SttVendor.OFFLINE.label}"),
        Option("stt_model", "nova-2-phonecall", blank="the vendor's default"),
        Option("tts_vendor", "cartesia", blank=f"Default: {catalogue.SpeechVendor.OFFLINE.label}"),
        Option("tts_model", "sonic-example", blank="the vendor's default"),
        Option("turn_patience", "patient", blank="Normal (default)"),
    ), used_when=("provider", ("cascaded",)), unused_note="Not used: the provider is not Cascaded."),
    OptionGroup("chat", "Chat model",
                "Used when the provider is a chat model (OpenAI Chat over ConversationRelay or the test chat) or "
                "Cascaded: the vendor and model that write the agent's replies. Empty: the OpenAI-compatible "
                "model. The vendor's key comes from the environment's secrets (OPENAI_API_KEY or "
                "ANTHROPIC_API_KEY).", (
        Option("chat_vendor", "anthropic", blank=f"Default: {catalogue.ChatVendor.OPENAI.label}"),
        Option("chat_model", "claude-example-1", blank="the vendor's default"),
    ), used_when=("provider", catalogue.CHAT_PROVIDERS),
        unused_note="Not used: the provider is neither OpenAI Chat nor Cascaded."),
    OptionGroup("outbound", "Calls the agent places",
                "When the agent calls out (Studio's Call a number, the API, campaigns) and a machine answers.", (
        Option("machine_action", "voicemail"),
        Option("voicemail_message", "Hi {first_name}, this is Acme calling about your order. Call us back.",
               textarea=2, help="Spoken after the beep in the version's voice; {variables} of the call are filled in."),
        # The recording itself is a row per version (agents.models.VoicemailRecording): uploaded on the draft's
        # page, copied on publish and compared in the diff through agents/hooks.py (agents.voicemail).
        Option("voicemail_source", "recording"),
    )),
    OptionGroup("analysis", "Post-call analysis",
                "Computed after each call from its transcript, with the version's chat model (scripted versions: by "
                "keywords). Shown on the call's page, in the calls list and in the export.", (
        Option("analysis_summary", True),
        Option("analysis_success", "The caller got their order status.", textarea=2),
        Option("analysis_fields", [{"name": "order_number", "type": "text", "description": "The order's number"}],
               edit=ROWS),
    )),
)

GROUPS_BY_KEY = {g.key: g for g in GROUPS}
OPTIONS = {o.name: o for g in GROUPS for o in g.options}


def group(key: str) -> OptionGroup:
    return GROUPS_BY_KEY[key]


def content_fields() -> list[str]:
    """Every option of every group: what makes up "what the agent is"."""
    return list(OPTIONS)


# ---------------------------------------------------------------------------
# Values as people read them (the version page and the publish diff)


def _quoted(words) -> str:
    return ", ".join(f"“{w}”" for w in words)


def _answer_line(row: dict) -> str:
    line = f"{_quoted(row.get('keywords') or [])} → {row.get('answer', '')}"
    return line + (f" (then plays {row['play']})" if row.get("play") else "")


def _rule_line(rule: dict) -> str:
    when = " or ".join(filter(None, [f"“{rule['keyword']}”" if rule.get("keyword") else "",
                                     f"key {rule['digit']}" if rule.get("digit") not in (None, "") else ""]))
    return f"{when} → {rule.get('action', '')}"


LANGUAGE_LABELS = {"tts_provider": "text-to-speech", "voice": "voice", "transcription_provider": "recognition",
                   "speech_model": "speech model"}


def _language_line(entry: dict) -> str:
    rest = ", ".join(f"{label} {entry[key]}" for key, label in LANGUAGE_LABELS.items() if entry.get(key))
    return f"{entry.get('code', '')}{': ' + rest if rest else ''}"


def _analysis_field_line(entry: dict) -> str:
    kind = entry.get("type", "text")
    if entry.get("values"):
        kind += f": {', '.join(str(v) for v in entry['values'])}"
    line = f"{entry.get('name', '')} ({kind})"
    if entry.get("description"):
        line += f" — {entry['description']}"
    if entry.get("keywords"):
        line += f" (keywords {_quoted(entry['keywords'])})"
    return line


# One line per row, for each field edited as rows.
ROW_LINES = {"scripted_answers": _answer_line, "handover_rules": _rule_line, "relay_languages": _language_line,
             "analysis_fields": _analysis_field_line}


def _row_lines(rows, line) -> str:
    """One line per row (a row that is not a dict, e.g. edited by hand, as it is)."""
    if not isinstance(rows, list):
        return str(rows)
    return "\n".join(line(row) if isinstance(row, dict) else str(row) for row in rows)


def _choices(name: str) -> dict:
    from django.apps import apps

    try:
        return dict(apps.get_model("agents", "AgentVersion")._meta.get_field(name).choices or ())
    except Exception:  # noqa: BLE001 - not a model field
        return {}


def label(name: str) -> str:
    """The field's label: the model field's verbose name, capitalised."""
    from django.apps import apps

    text = str(apps.get_model("agents", "AgentVersion")._meta.get_field(name).verbose_name)
    return text[:1].upper() + text[1:]


def value_text(name: str, value) -> str:
    """A version field's value as people read it: choice labels, yes/no, rows as one sentence each."""
    if value is None or value == "" or value == []:
        return ""
    if value is True or value is False:
        return "yes" if value else "no"
    if name in ROW_LINES:
        return _row_lines(value, ROW_LINES[name])
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(_choices(name).get(value, value))


@dataclass(frozen=True)
class ShownOption:
    name: str
    label: str
    text: str  # the value in words ("" when empty)
    blank: str  # what empty means


@dataclass(frozen=True)
class ShownGroup:
    key: str
    legend: str
    used: bool
    unused_note: str
    options: list[ShownOption]


def version_groups(version) -> list[ShownGroup]:
    """Every group of `version` with each field's value in words (the version page)."""
    return [ShownGroup(g.key, g.legend, g.used_by(version), g.unused_note,
                       [ShownOption(o.name, label(o.name), value_text(o.name, getattr(version, o.name)), o.blank)
                        for o in g.options])
            for g in GROUPS]
