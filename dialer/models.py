from django.db import models

from workspaces.fields import EncryptedCharField, mask_secret
from workspaces.models import Workspace


class TwilioConnection(models.Model):
    """A workspace's one Twilio account, shared by the dialer and Studio's phone connectors."""

    class Mode(models.TextChoices):
        HOSTED = "hosted", "Hosted"
        BYOK = "byok", "BYOK (Bring Your Own Key)"

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "Not connected"
        VALIDATING = "validating", "Validating"
        CONNECTED = "connected", "Connected"
        ERROR = "error", "Error"

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="twilio_connection")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.BYOK)
    account_sid = models.CharField(max_length=34, blank=True, db_index=True)
    auth_token = EncryptedCharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # What the browser dialer needs, created once on the account and reused.
    api_key_sid = models.CharField(max_length=34, blank=True)
    api_key_secret = EncryptedCharField(max_length=64, blank=True)
    twiml_app_sid = models.CharField(max_length=34, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace} · {self.get_mode_display()} · {self.account_sid or '-'} · {self.get_status_display()}"

    @property
    def masked_auth_token(self) -> str:
        return mask_secret(self.auth_token)

    @property
    def has_credentials(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    def credentials(self):
        from .twilio_gateway import Credentials

        return Credentials(account_sid=self.account_sid, auth_token=self.auth_token)


class PhoneNumber(models.Model):
    """A Twilio number on the workspace's account."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="phone_numbers")
    sid = models.CharField(max_length=34, unique=True)
    phone_number = models.CharField(max_length=20)
    friendly_name = models.CharField(max_length=64, blank=True)
    locality = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=64, blank=True)
    iso_country = models.CharField(max_length=2, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "phone_number"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone_number"], name="uniq_workspace_phone_number"),
        ]

    def __str__(self) -> str:
        return self.phone_number
