from django.conf import settings
from django.db import models


class Workspace(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    default_country = models.CharField(
        max_length=2, default="US", help_text="ISO country used to read phone numbers typed without a country code."
    )
    require_two_factor = models.BooleanField(
        default=False, help_text="Every member must sign in with a second factor (an authenticator app)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership")]
        ordering = ["workspace__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the heartbeat task (queued by beat every minute).

    Ops read it in the admin: a stale `last_seen_at` means no worker is consuming
    the queue, or beat is not running.
    """

    hostname = models.CharField(max_length=200, unique=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveIntegerField(default=0)
    last_source = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.last_seen_at:%Y-%m-%d %H:%M:%S}"


class AuditEntry(models.Model):
    """Who did what in a workspace: one row per business event, written by the service that did it
    (`workspaces.services.audit_record`). Never a secret value: secrets appear by name only."""

    class Action(models.TextChoices):
        TWILIO_CREDENTIALS_SAVED = "twilio.credentials_saved", "Connected or changed Twilio credentials"
        TWILIO_HOSTED_STARTED = "twilio.hosted_started", "Switched to a hosted Twilio account"
        NUMBER_BOUGHT = "number.bought", "Bought a phone number"
        NUMBER_RELEASED = "number.released", "Released a phone number"
        AGENT_PUBLISHED = "agent.published", "Published an agent version"
        CONNECTOR_VERSION_PINNED = "connector.version_pinned", "Pinned a connector to a version"
        CONNECTOR_NUMBER_ATTACHED = "connector.number_attached", "Attached a number to a connector"
        CONNECTOR_NUMBER_DETACHED = "connector.number_detached", "Detached a number from a connector"
        SECRET_SET = "secret.set", "Set a secret"
        SECRET_DELETED = "secret.deleted", "Deleted a secret"
        AUTH_CONNECTOR_SAVED = "auth_connector.saved", "Saved an auth connector"
        CALL_LISTENED = "call.listened", "Listened to a live call"
        CALL_INTERVENED = "call.intervened", "Intervened in a live call"
        CALL_EXPORTED = "call.exported", "Exported a call"
        SECURITY_CHANGED = "workspace.security_changed", "Changed the workspace's security settings"
        API_KEY_CREATED = "api_key.created", "Created an API key"
        API_KEY_REVOKED = "api_key.revoked", "Revoked an API key"
        AGENT_CALL_PLACED = "agent_call.placed", "Placed an agent call"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True, help_text="The actor's username when it happened.")
    action = models.CharField(max_length=40, choices=Action.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_ws_created")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'}: {self.get_action_display()} {self.object_label}".strip()


# ---------------------------------------------------------------------------
# Two-factor sign-in: the authenticator app's device, its key encrypted at rest (issue 22.8)

from django_otp.models import Device, ThrottlingMixin, TimestampMixin  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator  # noqa: E402

from workspaces.fields import EncryptedCharField  # noqa: E402


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """django-otp's TOTP device with its key encrypted by FIELD_ENCRYPTION_KEY (django-otp's own `TOTPDevice`
    keeps it in clear hex). The fields are TOTPDevice's; the TOTP logic is django-otp's own (its methods, bound
    here), not a copy. Found by django-otp like any device (`devices_for_user`, `match_token`, `otp_login`).
    Migration 0005 moved the existing TOTPDevice rows here, encrypting their keys."""

    key = EncryptedCharField(max_length=80, validators=[key_validator], default=default_key,
                             help_text="A hex-encoded secret key of up to 40 bytes (stored encrypted).")
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(default=0, help_text="The Unix time at which to begin counting steps.")
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6,
                                              help_text="The number of digits to expect in a token.")
    tolerance = models.PositiveSmallIntegerField(
        default=1, help_text="The number of time steps in the past or future to allow.")
    drift = models.SmallIntegerField(
        default=0, help_text="The number of time steps the prover is known to deviate from our clock.")
    last_t = models.BigIntegerField(
        default=-1, help_text="The t value of the latest verified token. The next token must be at a higher time step.")

    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings

    class Meta(Device.Meta):
        verbose_name = "authenticator app (TOTP device)"
