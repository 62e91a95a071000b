import json
import re

from django import forms

from agents.models import NAME_RE, AgentVersion, AuthConnector, HandoverAction, identifier_validator, name_validator


class AgentCreateForm(forms.Form):
    name = forms.CharField(max_length=120)


def _names(text: str, field: str) -> list[str]:
    names = [n.strip() for n in re.split(r"[,\s]+", text or "") if n.strip()]
    bad = [n for n in names if not re.match(NAME_RE, n)]
    if bad:
        raise forms.ValidationError(f"Not valid {field} names: {', '.join(bad)} (letters, digits, underscores).")
    return list(dict.fromkeys(names))


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

    class Meta:
        model = AgentVersion
        fields = ["caller_name", "greeting", "instructions", "language", "voice", "transport", "provider"]
        widgets = {"greeting": forms.Textarea(attrs={"rows": 2}), "instructions": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.pk:
            self.initial["variables_text"] = ", ".join(self.instance.variables or [])
            self.initial["secrets_text"] = ", ".join(self.instance.secrets or [])
            if self.instance.scripted_answers:
                self.initial["scripted_answers_text"] = json.dumps(self.instance.scripted_answers, indent=2)
            if self.instance.handover_rules:
                self.initial["handover_rules_text"] = json.dumps(self.instance.handover_rules, indent=2)

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
        return data

    def content(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
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
