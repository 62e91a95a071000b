"""Phone connectors: a Twilio number → agent + environment + version mode."""
import secrets

from django.db import models

from agents.models import Agent, AgentVersion, Environment
from telephony.models import PhoneNumber
from telephony.public_urls import absolute_url
from workspaces.models import Workspace


def new_identifier() -> str:
    """Unguessable, URL-safe (32 chars, 192 bits of randomness)."""
    return secrets.token_urlsafe(24)


class PhoneConnector(models.Model):
    class Type(models.TextChoices):
        TWILIO = "twilio", "Twilio"

    class VersionMode(models.TextChoices):
        PUBLISHED = "published", "Published"
        DRAFT = "draft", "Draft"
        PINNED = "pinned", "Pinned"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="phone_connectors")
    name = models.CharField(max_length=120, blank=True)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.TWILIO)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="phone_connectors")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="phone_connectors")
    version_mode = models.CharField(max_length=10, choices=VersionMode.choices, default=VersionMode.PUBLISHED)
    pinned_version = models.ForeignKey(AgentVersion, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="pinned_connectors")
    identifier = models.CharField(max_length=64, unique=True, default=new_identifier, editable=False)
    enabled = models.BooleanField(default=True)
    alert_text = models.TextField(blank=True, help_text="The last problem a call ran into.")
    alert_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"{self.agent} · {self.environment} · {self.get_version_mode_display()}"

    @property
    def webhook_path(self) -> str:
        return f"/v1/agents/{self.identifier}/twilio-config"

    @property
    def webhook_url(self) -> str:
        return absolute_url(self.webhook_path)

    @property
    def handover_url(self) -> str:
        """ConversationRelay's `<Connect action>`: where Twilio asks what to do when the agent hands the call over."""
        return absolute_url(f"/v1/agents/{self.identifier}/handover")

    @property
    def mode_label(self) -> str:
        if self.version_mode == self.VersionMode.PINNED and self.pinned_version_id:
            return f"Pinned ({self.pinned_version.label})"
        return self.get_version_mode_display()


class ConnectorNumber(models.Model):
    connector = models.ForeignKey(PhoneConnector, on_delete=models.CASCADE, related_name="numbers")
    phone_number = models.OneToOneField(PhoneNumber, on_delete=models.CASCADE, related_name="connector_link")
    attached_at = models.DateTimeField(auto_now_add=True)
    drift = models.BooleanField(default=False, help_text="The number's voice URL no longer points at this connector.")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    observed_voice_url = models.URLField(max_length=500, blank=True)
    observed_voice_method = models.CharField(max_length=8, blank=True)
    check_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["phone_number__phone_number"]

    def __str__(self) -> str:
        return f"{self.phone_number} → {self.connector}"
