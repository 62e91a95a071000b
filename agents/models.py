"""Agents (draft + immutable published versions, handover actions) and per-workspace environments."""
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from agents import options
from agents.catalogue import (
    ChatVendor,
    Interruptible,
    SpeechVendor,
    SttVendor,
    TranscriptionProvider,
    TtsProvider,
    TurnPatience,
)
from workspaces.fields import EncryptedTextField, mask_secret
from workspaces.models import Workspace

IDENTIFIER_RE = r"^[a-z][a-z0-9_]{1,63}$"
identifier_validator = RegexValidator(
    IDENTIFIER_RE,
    "Use 2–64 characters: lowercase letters, digits and underscores, starting with a letter (e.g. transfer_to_sales).",
)
# Names of secrets and variables: letters, digits, underscores (env-var style, any case).
NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
name_validator = RegexValidator(
    NAME_RE, "Use letters, digits and underscores, starting with a letter or underscore (max 64 characters)."
)


class ImmutableVersionError(Exception):
    """A published agent version (or one of its actions) cannot be changed or deleted."""


class Agent(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    # The newest published version, kept by agents.services.agent_publish (lets the webhook resolve
    # "Published" mode in the same query that finds the connector).
    latest_version = models.ForeignKey("AgentVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "slug"], name="uniq_agent_slug_per_workspace")]

    def __str__(self) -> str:
        return self.name


ANALYSIS_TYPES = ("text", "number", "boolean", "enum")
MAX_ANALYSIS_FIELDS = 30


def validate_analysis_fields(value) -> None:
    """The post-call fields of a version: a list of {name, type, values (enum only), description}."""
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise ValidationError("The post-call fields must be a list of objects.")
    if len(value) > MAX_ANALYSIS_FIELDS:
        raise ValidationError(f"At most {MAX_ANALYSIS_FIELDS} post-call fields.")
    seen = set()
    for i, f in enumerate(value, 1):
        name = f.get("name")
        if not isinstance(name, str) or not re.fullmatch(IDENTIFIER_RE, name):
            raise ValidationError(f"Field {i}: the name must be an identifier such as order_number.")
        if name in seen:
            raise ValidationError(f"Field {name} is listed twice.")
        seen.add(name)
        if f.get("type") not in ANALYSIS_TYPES:
            raise ValidationError(f"Field {name}: the type must be one of {', '.join(ANALYSIS_TYPES)}.")
        values = f.get("values") or []
        if f["type"] == "enum" and (not isinstance(values, list) or not values
                                    or not all(isinstance(v, str) and v for v in values)):
            raise ValidationError(f"Field {name}: an enum needs its values.")
        if not isinstance(f.get("description", ""), str):
            raise ValidationError(f"Field {name}: the description must be text.")


class AgentVersion(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    class Transport(models.TextChoices):
        MEDIA_STREAMS = "media_streams", "Media Streams (raw audio)"
        CONVERSATION_RELAY = "conversation_relay", "ConversationRelay (Twilio speech)"

    class Provider(models.TextChoices):
        SCRIPTED = "scripted", "Scripted answers"
        OPENAI_REALTIME = "openai_realtime", "OpenAI Realtime"
        OPENAI_CHAT = "openai_chat", "OpenAI Chat"
        CASCADED = "cascaded", "Cascaded: speech recognition, chat model, text-to-speech (Media Streams)"

    # The option groups are declared once in agents.options (one row per field); these lists derive from it.
    # ConversationRelay's speech options (Twilio's <ConversationRelay> attributes; empty = Twilio's default).
    RELAY_FIELDS = list(options.group("relay").fields)
    # Post-call analysis (calls.services.analysis): what is computed from each call's transcript.
    ANALYSIS_FIELDS = list(options.group("analysis").fields)
    # The cascaded provider's stages (Media Streams); `voice` is the text-to-speech voice there.
    CASCADED_FIELDS = list(options.group("cascaded").fields)
    # The chat model that writes the replies (the openai_chat and cascaded providers).
    CHAT_FIELDS = list(options.group("chat").fields)
    # Calls the agent places (calls.services.outbound): what to do when a machine answers.
    OUTBOUND_FIELDS = list(options.group("outbound").fields)
    # Fields that make up "what the agent is": copied on publish/restore/new draft and compared in the diff.
    CONTENT_FIELDS = options.content_fields()

    class MachineAction(models.TextChoices):
        HANG_UP = "hang_up", "Hang up"
        VOICEMAIL = "voicemail", "Leave a voicemail after the beep"

    class VoicemailSource(models.TextChoices):
        MESSAGE = "message", "The message, spoken in the version's voice"
        RECORDING = "recording", "The uploaded recording, played as it is"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(null=True, blank=True, help_text="Empty for the draft; 1..n once published.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    caller_name = models.CharField("name shown to callers", max_length=120, blank=True)
    greeting = models.TextField(blank=True)
    instructions = models.TextField(blank=True)
    language = models.CharField(max_length=16, default="en-US")
    voice = models.CharField(max_length=64, blank=True)
    transport = models.CharField(max_length=24, choices=Transport.choices, default=Transport.MEDIA_STREAMS)
    provider = models.CharField(max_length=24, choices=Provider.choices, default=Provider.SCRIPTED)
    variables = models.JSONField(default=list, blank=True, help_text="Names of environment variables it uses.")
    secrets = models.JSONField(default=list, blank=True, help_text="Names of environment secrets it needs.")
    scripted_answers = models.JSONField(default=list, blank=True, help_text='[{"keywords": [...], "answer": "..."}]')
    handover_rules = models.JSONField(default=list, blank=True, help_text='[{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}]')
    # ConversationRelay only (Twilio does the speech). `voice` above is the text-to-speech voice there.
    relay_tts_provider = models.CharField("text-to-speech provider", max_length=16, blank=True,
                                          choices=TtsProvider.choices)
    relay_transcription_provider = models.CharField("speech recognition provider", max_length=16, blank=True,
                                                    choices=TranscriptionProvider.choices)
    relay_speech_model = models.CharField("speech model", max_length=32, blank=True)
    relay_languages = models.JSONField(
        "language entries", default=list, blank=True,
        help_text='<Language> entries: [{"code": "sv-SE", "tts_provider": "Amazon", "voice": "Elin-Neural", '
                  '"transcription_provider": "Google", "speech_model": "long"}]; empty keys inherit.')
    relay_interruptible = models.CharField("caller can interrupt replies", max_length=8, blank=True,
                                           choices=Interruptible.choices)
    relay_welcome_greeting_interruptible = models.CharField("caller can interrupt the greeting", max_length=8,
                                                            blank=True, choices=Interruptible.choices)
    relay_preemptible = models.BooleanField("a new reply cuts the current one short", default=False)
    relay_dtmf_detection = models.BooleanField("DTMF detection (key presses reach the agent)", default=False)
    relay_hints = models.JSONField("speech recognition hints", default=list, blank=True,
                                   help_text="Words or phrases the caller may say (product names, jargon).")
    # Post-call analysis: a summary, structured fields (see validate_analysis_fields) and a success criterion.
    analysis_summary = models.BooleanField("post-call summary", default=False)
    analysis_fields = models.JSONField(
        "post-call fields", default=list, blank=True, validators=[validate_analysis_fields],
        help_text='[{"name": "order_number", "type": "text|number|boolean|enum", "values": [...], '
                  '"description": "..."}]')
    analysis_success = models.TextField("success criterion", blank=True,
                                        help_text="In words: when the call counts as a success.")
    stt_vendor = models.CharField("speech recognition", max_length=16, blank=True, choices=SttVendor.choices,
                                  help_text="Cascaded provider; empty: offline (pocketsphinx).")
    stt_model = models.CharField("speech recognition model", max_length=64, blank=True,
                                 help_text="Empty: the vendor's default (e.g. Deepgram nova-3).")
    chat_vendor = models.CharField("chat model vendor", max_length=16, blank=True, choices=ChatVendor.choices,
                                   help_text="Cascaded provider; empty: OpenAI-compatible.")
    chat_model = models.CharField("chat model", max_length=64, blank=True,
                                  help_text="Empty: the vendor's default (OPENAI_CHAT_MODEL / ANTHROPIC_CHAT_MODEL).")
    tts_vendor = models.CharField("text-to-speech", max_length=16, blank=True, choices=SpeechVendor.choices,
                                  help_text="Cascaded provider; empty: offline (espeak-ng).")
    tts_model = models.CharField("text-to-speech model", max_length=64, blank=True,
                                 help_text="Empty: the vendor's default.")
    machine_action = models.CharField("when a machine answers an outbound call", max_length=12,
                                      choices=MachineAction.choices, default=MachineAction.HANG_UP)
    voicemail_message = models.TextField(
        "voicemail message", blank=True,
        help_text="Spoken after the beep in the version's voice; {first_name} etc. are the call's variables.")
    voicemail_source = models.CharField(
        "voicemail left", max_length=10, choices=VoicemailSource.choices, default=VoicemailSource.MESSAGE,
        help_text="The recording is uploaded below the form; without one, the message is spoken instead.")
    turn_patience = models.CharField("turn patience", max_length=8, blank=True, choices=TurnPatience.choices,
                                     help_text="How long a caller may pause mid-sentence before the agent answers; "
                                               "empty: normal.")
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    # What its API actions need from an environment, kept by agents.services (readiness reads no action rows):
    # {"auth_connectors": [names], "variables": [names]}.
    action_requirements = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["agent_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent"], condition=Q(state="draft"), name="one_draft_per_agent"),
            models.UniqueConstraint(fields=["agent", "number"], name="uniq_agent_version_number"),
            models.CheckConstraint(
                condition=(Q(state="draft", number__isnull=True) | Q(state="published", number__isnull=False)),
                name="version_number_matches_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} · {self.label}"

    @property
    def label(self) -> str:
        return "Draft" if self.state == self.State.DRAFT else f"v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.state == self.State.PUBLISHED

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_state = instance.__dict__.get("state")
        return instance

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded_state", None)
        if self.pk and loaded == self.State.PUBLISHED:
            raise ImmutableVersionError(f"{self.pk} is published and cannot be changed.")
        if self.pk and loaded is None:
            # Loaded without its state (deferred) or built by hand: ask the database.
            if AgentVersion.objects.filter(pk=self.pk, state=self.State.PUBLISHED).exists():
                raise ImmutableVersionError(f"Version {self.pk} is published and cannot be changed.")
        super().save(*args, **kwargs)
        self._loaded_state = self.state

    def delete(self, *args, **kwargs):
        if AgentVersion.objects.filter(pk=self.pk, state=self.State.PUBLISHED).exists():
            raise ImmutableVersionError(f"{self} is published and cannot be deleted.")
        return super().delete(*args, **kwargs)

    def content(self) -> dict:
        return {name: getattr(self, name) for name in self.CONTENT_FIELDS}


def validate_e164(value: str) -> None:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError("Enter the number with its country code, e.g. +31201234567.")
    if not value.startswith("+") or not phonenumbers.is_valid_number(parsed):
        raise ValidationError("Enter a valid phone number with its country code, e.g. +31201234567.")
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != value:
        raise ValidationError("Write the number in E.164 form without spaces, e.g. +31201234567.")


class VoicemailRecording(models.Model):
    """The audio a version leaves on an answering machine (machine action "voicemail", source "recording"),
    played with TwiML `<Play>` after the beep. One per version; copied on publish with the version's content
    (agents.services, through agents/hooks.py) and shown in the publish diff. The bytes are kept in the database
    (at most `settings.VOICEMAIL_MAX_BYTES`): a recording is a few hundred KB and must outlive any one server."""

    version = models.OneToOneField(AgentVersion, on_delete=models.CASCADE, related_name="voicemail_recording")
    filename = models.CharField(max_length=120)
    content_type = models.CharField(max_length=32)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    audio = models.BinaryField()
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.size // 1024 or 1} KB)"

    def content(self) -> dict:
        """What the publish diff compares (the bytes by their hash)."""
        return {"type": "voicemail recording", "filename": self.filename, "sha256": self.sha256,
                "destination": f"{self.filename}, {self.size // 1024 or 1} KB, played after the beep"}


class VersionAction(models.Model):
    """An action of one version (handover or API request): versioned with it, so fixed once it is published."""

    class Meta:
        abstract = True

    def _check_mutable(self):
        version_id = self.version_id
        if version_id and AgentVersion.objects.filter(pk=version_id, state=AgentVersion.State.PUBLISHED).exists():
            raise ImmutableVersionError("Actions of a published version cannot be changed.")

    def save(self, *args, **kwargs):
        self._check_mutable()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_mutable()
        return super().delete(*args, **kwargs)


class HandoverAction(VersionAction):
    """A handover the agent may choose; belongs to one version, so it is versioned with it."""

    class Type(models.TextChoices):
        PHONE = "phone", "Phone"

    class Kind(models.TextChoices):
        """How the call is handed over (calls.services.handovers: cold; calls.services.transfers: warm)."""

        COLD = "cold", "Cold: dial the number, the caller is put straight through"
        WARM = "warm", "Warm: the caller holds, the person hears a brief and presses 1 to take the call"
        AGENT = "agent", "Another agent: the call moves to another agent with the conversation so far"
        REPS = "reps", ("Dialer reps: the caller holds, the online reps' browser dialers ring with the brief on "
                        "screen, the first to accept takes the call")

    MAX_MORE_DESTINATIONS = 4

    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="actions")
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.PHONE)
    kind = models.CharField("handover kind", max_length=8, choices=Kind.choices, default=Kind.COLD)
    name = models.CharField(max_length=64, validators=[identifier_validator])
    destination = models.CharField(max_length=20, blank=True, validators=[validate_e164])
    # Another agent only: who takes the call (its version: a published number, empty = its newest published one;
    # its environment: empty = the call's own).
    target_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     verbose_name="agent who takes the call")
    target_version_number = models.PositiveIntegerField("its version", null=True, blank=True,
                                                        help_text="Empty: its newest published version.")
    target_environment = models.ForeignKey("agents.Environment", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+", verbose_name="its environment",
                                           help_text="Empty: the call's own environment.")
    # Warm transfers only: tried in order after `destination` declines, is busy, does not answer or is a machine.
    more_destinations = models.JSONField(default=list, blank=True)
    # Dialer reps only: the team rung (user ids of workspace members); empty = every online rep of the workspace.
    reps = models.JSONField("team of reps", default=list, blank=True)
    description = models.TextField(blank=True, help_text="When the agent should use this handover.")
    # Warm transfers only: what the caller hears before the hold (calls.services.transfers; empty: its default).
    hold_message = models.CharField(
        "hold message (warm only)", max_length=300, blank=True,
        help_text="What the caller hears while the person is rung, e.g. “One moment, I'm getting Sam from sales.” "
                  "Empty: “Please hold while I connect you.”")

    CONTENT_FIELDS = ["type", "kind", "destination", "more_destinations", "description", "target_agent_id",
                      "target_version_number", "target_environment_id", "hold_message", "reps"]

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="uniq_action_name_per_version")]

    def __str__(self) -> str:
        if self.kind == self.Kind.AGENT:
            return f"{self.name} → agent #{self.target_agent_id}"
        if self.kind == self.Kind.REPS:
            return f"{self.name} → dialer reps" + (f" ({len(self.reps)})" if self.reps else "")
        return f"{self.name} → {self.destination}"

    def content(self) -> dict:
        return {name: getattr(self, name) for name in self.CONTENT_FIELDS}

    def destinations(self) -> list[str]:
        """Where the handover rings, in order (a cold handover dials only the first)."""
        return [self.destination, *(self.more_destinations or [])]

    def clean(self):
        super().clean()
        if self.kind == self.Kind.AGENT:
            if self.target_agent_id is None:
                raise ValidationError({"target_agent": "Choose the agent who takes the call."})
            if self.version_id and self.target_agent_id == self.version.agent_id:
                raise ValidationError({"target_agent": "Choose another agent than this one."})
            if self.version_id and self.target_agent.workspace_id != self.version.agent.workspace_id:
                raise ValidationError({"target_agent": "Choose an agent of this workspace."})
            if (self.target_environment_id and self.version_id
                    and self.target_environment.workspace_id != self.version.agent.workspace_id):
                raise ValidationError({"target_environment": "Choose an environment of this workspace."})
        elif self.kind == self.Kind.REPS:
            if not isinstance(self.reps, list) or not all(isinstance(r, int) for r in self.reps):
                raise ValidationError({"reps": "Choose members of this workspace."})
        elif not self.destination:
            raise ValidationError({"destination": "Enter the phone number the call goes to."})
        extra = self.more_destinations or []
        if not isinstance(extra, list) or len(extra) > self.MAX_MORE_DESTINATIONS:
            raise ValidationError({"more_destinations": f"At most {self.MAX_MORE_DESTINATIONS} more numbers."})
        for number in extra:
            validate_e164(number)


def validate_json_pointer(value: str) -> None:
    if value and not value.startswith("/"):
        raise ValidationError('A JSON pointer starts with "/", e.g. /order/status (empty = the whole answer).')


class ApiAction(VersionAction):
    """An API request the agent may make during the call (a tool the model calls); versioned with its version.

    Templates may use `{VARIABLE}` (the environment's variables) and `{param}` (the model's parameters);
    secrets only reach the request through `auth_connector` (see agents.action_requests)."""

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    MAX_TIMEOUT = 15
    CONTENT_FIELDS = ["description", "wait_message", "method", "url", "headers", "query", "body", "parameters",
                      "auth_connector", "timeout_seconds", "max_response_bytes", "result_pointer",
                      "result_max_chars"]

    version = models.ForeignKey(AgentVersion, on_delete=models.CASCADE, related_name="api_actions")
    name = models.CharField(max_length=64, validators=[identifier_validator])
    description = models.TextField(blank=True, help_text="When the agent should use it (the model reads this).")
    wait_message = models.CharField("what the agent says while it waits", max_length=200, blank=True)
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.GET)
    url = models.CharField("URL", max_length=2000)
    headers = models.JSONField(default=dict, blank=True, help_text='{"Accept": "application/json"}')
    query = models.JSONField(default=dict, blank=True, help_text='{"order": "{order_id}"}')
    body = models.JSONField(null=True, blank=True, help_text="JSON body template (POST/PUT/PATCH).")
    # [{"name": "order_id", "type": "string", "required": true, "description": "...", "enum": [...]}]
    parameters = models.JSONField(default=list, blank=True)
    auth_connector = models.CharField(max_length=64, blank=True, help_text="The environment's auth connector "
                                      "by name (empty: no authentication).")
    timeout_seconds = models.FloatField(default=5, validators=[MinValueValidator(0.5), MaxValueValidator(MAX_TIMEOUT)])
    max_response_bytes = models.PositiveIntegerField(default=65536, validators=[MinValueValidator(256),
                                                                                  MaxValueValidator(65536)])
    result_pointer = models.CharField(max_length=200, blank=True, validators=[validate_json_pointer],
                                      help_text="What goes back to the model: a JSON pointer (empty = the whole JSON).")
    result_max_chars = models.PositiveIntegerField(default=2000, validators=[MinValueValidator(50),
                                                                             MaxValueValidator(16000)])

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="uniq_api_action_name_per_version")]

    def __str__(self) -> str:
        return f"{self.name} ({self.method} {self.url})"

    def content(self) -> dict:
        return {"type": "api", **{name: getattr(self, name) for name in self.CONTENT_FIELDS}}


class Environment(models.Model):
    class Kind(models.TextChoices):
        DEVELOPMENT = "development", "Development"
        STAGING = "staging", "Staging"
        PRODUCTION = "production", "Production"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="environments")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Calls through this environment: a dual-channel recording of each call, kept this many days.
    recording_enabled = models.BooleanField(default=False)
    recording_retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Recordings older than this are deleted, at Twilio and here.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workspace_id", "id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "kind"], name="uniq_environment_kind")]

    def __str__(self) -> str:
        return self.get_kind_display()


class EnvironmentSecret(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=64, validators=[name_validator])
    value = EncryptedTextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="uniq_env_secret_name")]

    def __str__(self) -> str:
        return f"{self.name} = {self.masked_value}"

    @property
    def masked_value(self) -> str:
        return mask_secret(self.value)


class EnvironmentVariable(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(max_length=64, validators=[name_validator])
    value = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="uniq_env_variable_name")]

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class AuthConnector(models.Model):
    """Named credentials the agent's actions use for outside APIs."""

    class Kind(models.TextChoices):
        API_KEY_HEADER = "api_key_header", "API key header"
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "Basic auth"
        OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"

    # Non-secret config keys each kind uses (the secret goes to `secret`).
    CONFIG_KEYS = {
        Kind.API_KEY_HEADER: ["header_name"],
        Kind.BEARER: [],
        Kind.BASIC: ["username"],
        Kind.OAUTH2_CLIENT_CREDENTIALS: ["token_url", "client_id", "scope"],
    }

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="auth_connectors")
    name = models.CharField(max_length=64, validators=[identifier_validator])
    kind = models.CharField(max_length=32, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    secret = EncryptedTextField(help_text="API key, bearer token, password or client secret.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="uniq_auth_connector_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def masked_secret(self) -> str:
        return mask_secret(self.secret)


NAME_PATTERN = re.compile(NAME_RE)


# ---------------------------------------------------------------------------
# Test suites: named scenarios per agent, run against any version + environment (the run itself is done by the
# live-call engine in `calls`; results are kept here so Studio's agent pages can show them).


class TestScenario(models.Model):
    """One conversation to try: what the caller says, turn by turn, and what must (not) happen."""

    __test__ = False  # not a pytest test class

    class Expect(models.TextChoices):
        ACTION_CALLED = "action_called", "Calls an action"
        REPLY_CONTAINS = "reply_contains", "A reply contains"
        REPLY_NOT_CONTAINS = "reply_not_contains", "No reply contains"
        ENDED = "ended", "The call ends"
        MAX_TURNS = "max_turns", "At most this many agent turns"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="test_scenarios")
    name = models.CharField(max_length=120)
    caller_turns = models.JSONField(default=list, help_text="What the caller says, one string per turn.")
    # [{"kind": Expect, "value": str | int, "arguments": {...}}]
    expectations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="uniq_test_scenario_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def expectation_labels(self) -> list[str]:
        """The expectations as people read them ("Calls an action: transfer_to_sales with order=42")."""
        labels = []
        for e in self.expectations or []:
            try:
                label = self.Expect(e.get("kind")).label
            except ValueError:
                continue
            value = e.get("value")
            arguments = ", ".join(f"{k}={v}" for k, v in (e.get("arguments") or {}).items())
            labels.append(label + (f": {value}" if value not in (None, "") else "")
                          + (f" with {arguments}" if arguments else ""))
        return labels


class TestRun(models.Model):
    """A suite run: every scenario of the agent against one version and environment (a Celery task)."""

    __test__ = False

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Could not run"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="test_runs")
    version = models.ForeignKey(AgentVersion, on_delete=models.SET_NULL, null=True, related_name="test_runs")
    version_label = models.CharField(max_length=40, blank=True)
    environment = models.ForeignKey(Environment, on_delete=models.SET_NULL, null=True, related_name="test_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent", "version", "-created_at"], name="testrun_agent_version")]

    def __str__(self) -> str:
        return f"{self.agent} {self.version_label} · {self.get_status_display()}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def failed_count(self) -> int:
        return self.completed - self.passed


class TestResult(models.Model):
    """One scenario's outcome in a run, with the conversation it had."""

    __test__ = False

    run = models.ForeignKey(TestRun, on_delete=models.CASCADE, related_name="results")
    scenario = models.ForeignKey(TestScenario, on_delete=models.SET_NULL, null=True, related_name="results")
    scenario_name = models.CharField(max_length=120)
    passed = models.BooleanField(default=False)
    failures = models.JSONField(default=list, blank=True)  # plain-words reasons
    conversation = models.JSONField(default=list, blank=True)  # [{"role": "caller"|"agent"|"event", "text": …}]
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["scenario_name", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "scenario"], name="uniq_test_result_scenario")]

    def __str__(self) -> str:
        return f"{self.scenario_name}: {'passed' if self.passed else 'failed'}"
