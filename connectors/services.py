"""All writes of phone connectors, attached numbers and call sessions."""
from __future__ import annotations

import logging
import secrets

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import CallSession

logger = logging.getLogger(__name__)

STREAM_TOKEN_SALT = "connectors.stream-token.v1"
STREAM_TOKEN_MAX_AGE = 60


class InvalidStreamToken(Exception):
    """The stream's session parameter is forged, expired or was already used."""


# ---------------------------------------------------------------------------
# Stream tokens: the <Parameter name="session"> passed to our real-time endpoint.


def stream_token_issue(*, call_session: CallSession) -> str:
    """A signed, short-lived, single-use token naming this call session.

    Each issue stores a fresh nonce on the session, so only the newest token is
    valid (a retried webhook replaces the token Twilio never used).
    """
    nonce = secrets.token_urlsafe(12)
    CallSession.objects.filter(pk=call_session.pk).update(stream_token_nonce=nonce, stream_token_used_at=None)
    call_session.stream_token_nonce = nonce
    call_session.stream_token_used_at = None
    return signing.TimestampSigner(salt=STREAM_TOKEN_SALT).sign(f"{call_session.pk}.{nonce}")


def stream_token_consume(*, token: str, max_age: int = STREAM_TOKEN_MAX_AGE) -> CallSession:
    """The call session the token names; marks the token used (atomically). Raises InvalidStreamToken."""
    try:
        value = signing.TimestampSigner(salt=STREAM_TOKEN_SALT).unsign(token or "", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvalidStreamToken("The stream token has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidStreamToken("The stream token is not valid.") from exc
    pk, _, nonce = value.partition(".")
    if not pk.isdigit() or not nonce:
        raise InvalidStreamToken("The stream token is not valid.")
    used = CallSession.objects.filter(pk=int(pk), stream_token_nonce=nonce, stream_token_used_at__isnull=True).update(
        stream_token_used_at=timezone.now()
    )
    if used != 1:
        raise InvalidStreamToken("The stream token was already used.")
    return CallSession.objects.select_related(
        "connector", "agent_version", "agent_version__agent", "environment", "workspace"
    ).get(pk=int(pk))
