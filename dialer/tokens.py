"""Voice tokens for the browser dialer, and who is online to take inbound calls.

A token is a Twilio AccessToken (HS256, signed with the workspace's API key
secret) carrying a VoiceGrant for the workspace's TwiML app (outgoing) with
incoming calls allowed. The identity is derived from the logged-in user and
the workspace (`ws<workspace>-u<user>`), never taken from the request.

Presence (who rings on an inbound call) is kept simple: a member is "online"
while the last voice token issued to them in that workspace is still valid
(it lasts `VOICE_TOKEN_TTL`, and the browser refreshes it 10 minutes before
expiry). It lives in the cache, one key per member, so marking is one write
and the inbound webhook reads all members with one `get_many`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.conf import settings
from django.core.cache import cache
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

# Identities and presence are shared with calls/ (a transfer to the dialer's reps): telephony.presence.
from telephony.presence import (  # noqa: E402,F401 - re-exported
    CLIENT_PREFIX,
    IDENTITY_RE,
    identity_parse,
    online_user_ids,
    presence_clear,
    presence_mark,
    voice_identity,
)


class VoiceTokenUnavailable(Exception):
    """The workspace cannot issue voice tokens yet; `code` is machine-readable, `message` names the fix."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class VoiceToken:
    token: str = field(repr=False)
    identity: str
    issued_at: int
    expires_at: int
    ttl: int

    def as_json(self) -> dict:
        return {
            "token": self.token,
            "identity": self.identity,
            "expires_at": datetime.fromtimestamp(self.expires_at, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "expires_at_epoch": self.expires_at,
            "issued_at_epoch": self.issued_at,
            "ttl": self.ttl,
        }


class _AccessToken(AccessToken):
    """Twilio's AccessToken, plus the standard `iat` claim (Twilio's Node helper sets it too)."""

    def _generate_payload(self):
        payload = super()._generate_payload()
        if isinstance(self.nbf, int):
            payload["iat"] = self.nbf
        return payload


def sandbox_signalling() -> str:
    """The local Twilio sandbox's Voice SDK signalling (`host:port`, the Device's `chunderw`), or "".

    Only when every Twilio request goes to the sandbox (TWILIO_API_BASE_URL): never in production."""
    if not getattr(settings, "TWILIO_API_BASE_URL", ""):
        return ""
    return getattr(settings, "TWILIO_SANDBOX_SIGNALLING", "") or ""


def voice_token_ttl() -> int:
    return int(getattr(settings, "VOICE_TOKEN_TTL", 3600))


def voice_token_issue(*, connection, user, now: int | None = None, mark_presence: bool = True) -> VoiceToken:
    """A fresh token for `user` on `connection`'s workspace. Raises VoiceTokenUnavailable when it cannot be signed."""
    if not connection.account_sid:
        raise VoiceTokenUnavailable("Connect your phone system: no Twilio account is connected.", code="not_connected")
    if not connection.api_key_sid or not connection.api_key_secret or not connection.twiml_app_sid:
        raise VoiceTokenUnavailable(
            "The dialer is not set up on your Twilio account yet (API key or TwiML app missing): "
            "open Settings → Dialer and save the credentials again.",
            code="dialer_not_provisioned",
        )
    ttl = voice_token_ttl()
    issued_at = int(time.time()) if now is None else int(now)
    identity = voice_identity(workspace_id=connection.workspace_id, user_id=user.pk)
    token = _AccessToken(
        connection.account_sid,
        connection.api_key_sid,
        connection.api_key_secret,
        identity=identity,
        nbf=issued_at,
        ttl=ttl,
        valid_until=issued_at + ttl,
        grants=[VoiceGrant(outgoing_application_sid=connection.twiml_app_sid, incoming_allow=True)],
    )
    jwt = token.to_jwt()
    if isinstance(jwt, bytes):  # very old PyJWT
        jwt = jwt.decode("ascii")
    if mark_presence:
        presence_mark(workspace_id=connection.workspace_id, user_id=user.pk, until=issued_at + ttl)
    return VoiceToken(token=jwt, identity=identity, issued_at=issued_at, expires_at=issued_at + ttl, ttl=ttl)


# ---------------------------------------------------------------------------
# Rate limit (per user, fixed window in the cache)


def voice_token_rate_limit() -> tuple[int, int]:
    """(requests, window seconds). A browser needs about one per page load plus one per 50 minutes."""
    limit = getattr(settings, "VOICE_TOKEN_RATE_LIMIT", (30, 60))
    return int(limit[0]), int(limit[1])


def voice_token_rate_limited(*, user_id: int, now: float | None = None) -> int:
    """Count one request; returns 0 when allowed, else the seconds to wait (Retry-After)."""
    allowed, window = voice_token_rate_limit()
    now = time.time() if now is None else now
    bucket = int(now // window)
    key = f"voice-token-rl:{user_id}:{bucket}"
    try:
        count = cache.incr(key)  # one round trip on the common path
    except ValueError:  # first request in this window
        count = 1 if cache.add(key, 1, window + 5) else cache.incr(key)
    if count > allowed:
        return max(1, int((bucket + 1) * window - now))
    return 0
