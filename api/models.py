"""The public API's own rows: workspace API keys (stored hashed) and idempotency keys of call requests."""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from workspaces.models import Workspace

KEY_PREFIX = "cw_live_"


def key_hash(raw: str) -> str:
    """SHA-256 of the whole key: keys are 256-bit random, so a fast hash is enough (no password stretching)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    """A workspace's key for the public API. The secret is shown once; only its hash and first characters stay."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell keys apart.")
    hashed_key = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # DRF's IsAuthenticated reads request.user.is_authenticated; the key is the request's "user".
    is_authenticated = True


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` of a `POST /api/v1/calls`: the unique constraint makes a repeat (even concurrent)
    return the call the first request placed instead of dialling again."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body: a reuse must match.")
    call_session = models.ForeignKey("calls.CallSession", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="uniq_api_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.key} → {self.call_session_id}"
