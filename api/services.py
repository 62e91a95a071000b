"""Writes of the public API: API keys (created, revoked, used) and idempotency keys of call requests."""
from __future__ import annotations

import hashlib
import json
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import KEY_PREFIX, ApiKey, IdempotencyKey, key_hash
from workspaces.models import AuditEntry
from workspaces.services import audit_record

LAST_USED_RESOLUTION_SECONDS = 60  # last_used_at is written at most once a minute per key


@transaction.atomic
def api_key_create(*, workspace, name: str, actor=None) -> tuple[ApiKey, str]:
    """A new key: (row, the secret). The secret is returned this once; only its hash is stored."""
    from django.core.exceptions import ValidationError

    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the key (e.g. the system that uses it)."})
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(workspace=workspace, name=name[:80], prefix=raw[:12], hashed_key=key_hash(raw),
                                created_by=actor if getattr(actor, "pk", None) else None)
    audit_record(workspace=workspace.pk, actor=actor, action=AuditEntry.Action.API_KEY_CREATED, target=key,
                 details={"name": key.name, "prefix": key.prefix})
    return key, raw


@transaction.atomic
def api_key_revoke(*, workspace, key_id: int, actor=None) -> ApiKey | None:
    key = ApiKey.objects.select_for_update().filter(workspace=workspace, pk=key_id).first()
    if key is None or key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(workspace=workspace.pk, actor=actor, action=AuditEntry.Action.API_KEY_REVOKED, target=key,
                 details={"name": key.name, "prefix": key.prefix})
    return key


def api_key_used(*, key: ApiKey) -> None:
    """Note the key's use (one UPDATE a minute at most, whatever the request rate)."""
    now = timezone.now()
    if key.last_used_at and (now - key.last_used_at).total_seconds() < LAST_USED_RESOLUTION_SECONDS:
        return
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def request_fingerprint(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyConflict(Exception):
    """The key was used with another request body, or its first request is still being placed."""

    def __init__(self, message: str, *, status: int = 409):
        super().__init__(message)
        self.message, self.status = message, status


def idempotency_claim(*, workspace, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """(row, claimed): claimed=True when this request is the first with `key` and must place the call; else the
    row of the first request (its call). The unique constraint decides between concurrent requests."""
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(workspace=workspace, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        row = IdempotencyKey.objects.select_related("call_session").get(workspace=workspace, key=key)
    if row.fingerprint != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used with a different request.", status=422)
    if row.call_session_id is None:
        raise IdempotencyConflict("A request with this Idempotency-Key is still being placed: retry shortly.")
    return row, False


def idempotency_complete(*, row: IdempotencyKey, call_session) -> None:
    IdempotencyKey.objects.filter(pk=row.pk).update(call_session=call_session)


def idempotency_release(*, row: IdempotencyKey) -> None:
    """The first request was refused before dialling: the key may be used again (with a corrected request)."""
    IdempotencyKey.objects.filter(pk=row.pk, call_session__isnull=True).delete()
