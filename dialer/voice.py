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

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.conf import settings
from django.core.cache import cache
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

IDENTITY_RE = re.compile(r"^ws(?P<workspace_id>\d+)-u(?P<user_id>\d+)$")
CLIENT_PREFIX = "client:"


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


def voice_identity(*, workspace_id: int, user_id: int) -> str:
    return f"ws{workspace_id}-u{user_id}"


def identity_parse(value: str) -> tuple[int, int] | None:
    """(workspace_id, user_id) from `ws3-u7` or `client:ws3-u7`, else None."""
    if value.startswith(CLIENT_PREFIX):
        value = value[len(CLIENT_PREFIX):]
    match = IDENTITY_RE.match(value or "")
    if match is None:
        return None
    return int(match["workspace_id"]), int(match["user_id"])


def voice_token_ttl() -> int:
    return int(getattr(settings, "VOICE_TOKEN_TTL", 3600))


def voice_token_issuable(*, connection) -> bool:
    """Whether `voice_token_issue` can sign a token for `connection` (it raises VoiceTokenUnavailable otherwise)."""
    return bool(connection is not None and connection.account_sid and connection.api_key_sid
                and connection.api_key_secret and connection.twiml_app_sid)


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


# The token endpoint's common path counts the request, reads the generations its per-process context is
# tagged with and, when the request is allowed and the context is still current, marks the rep online: one
# round trip to Redis (a server-side script). Same keys and values as `voice_token_rate_limited` and
# `presence_mark` (Django's Redis serializer stores ints as plain integers), so either path reads what the
# other wrote. Generations are compared as the bytes Redis holds.
_ADMIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local gu = redis.call('GET', KEYS[3])
local gw = redis.call('GET', KEYS[4])
local session = false
local session_ok = 1
if ARGV[8] == '1' then
  session = redis.call('GET', KEYS[5])
  session_ok = (session and session == ARGV[9]) and 1 or 0
end
local marked = 0
if count <= tonumber(ARGV[2]) and ARGV[5] == '1' and session_ok == 1 and gu and gw and gu == ARGV[6]
    and gw == ARGV[7] then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
  marked = 1
end
return {count, gu, gw, marked, session}
"""
_ADMIT_SHA = hashlib.sha1(_ADMIT_SCRIPT.encode()).hexdigest()
GENERATION_SECONDS = 7 * 24 * 3600


def workspace_generation_key(workspace_id: int) -> str:
    return f"voice-ws-gen:v1:{workspace_id}"


def workspace_generation_bump(*, workspace_id: int) -> None:
    """A new generation for the workspace's voice setup: per-process token contexts of it are not used again."""
    cache.set(workspace_generation_key(workspace_id), secrets.token_hex(8), GENERATION_SECONDS)


def _generation_keys(user_id: int, workspace_id: int) -> list[str]:
    from workspaces.selectors import user_generation_key

    return [user_generation_key(user_id), workspace_generation_key(workspace_id)]


def voice_context_generations(*, user_id: int, workspace_id: int):
    """The current (user, workspace) generations, created when missing (evicted, first use), as the stamp a
    token context read *after* this call is tagged with (a change committing meanwhile replaces them)."""
    keys = _generation_keys(user_id, workspace_id)
    for key in keys:
        cache.add(key, secrets.token_hex(8), GENERATION_SECONDS)
    client = getattr(cache, "redis_client", None)
    if client is None:
        found = cache.get_many(keys)
        values = tuple(found.get(k) for k in keys)
    else:
        made = [cache.make_and_validate_key(k) for k in keys]
        values = tuple(client(made[0]).mget(made))
    return None if any(v is None for v in values) else values


@dataclass(frozen=True)
class Admission:
    retry_after: int  # 0: allowed
    generations: tuple | None  # (user, workspace) as read now; None when one is missing
    presence_marked: bool  # allowed, and the stamp (and session) given were current
    session_raw: bytes | None = field(default=None, repr=False)  # the session as Redis holds it, when asked


def _admit_eval(client, keys: list, args: list):
    """EVALSHA (the script is not sent each time); EVAL once when Redis does not know it (first use, restart)."""
    from redis.exceptions import NoScriptError

    try:
        return client.evalsha(_ADMIT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        return client.eval(_ADMIT_SCRIPT, len(keys), *keys, *args)


def voice_token_admit(*, workspace_id: int, user_id: int, until: int, now: float | None = None,
                      stamp: tuple | None = None, session_cache_key: str = "",
                      session_raw: bytes | None = None) -> Admission:
    """Count the request (`voice_token_rate_limited`), read the generations, and `presence_mark(until=until)` when
    allowed and `stamp` (the generations a cached token context was read under) is still current.

    With `session_cache_key` (Redis only: the session's key in the cache, made), the session's stored bytes are
    read in the same round trip and returned; given `session_raw` too, presence is only marked when they are
    still exactly those bytes (the session a cached context was verified against).

    One Redis round trip (a server-side script) when the cache is Redis; a few cache calls on other backends.
    """
    allowed, window = voice_token_rate_limit()
    now = time.time() if now is None else now
    bucket = int(now // window)
    keys = _generation_keys(user_id, workspace_id)
    client = getattr(cache, "redis_client", None)
    if client is None:
        retry_after = voice_token_rate_limited(user_id=user_id, now=now)
        found = cache.get_many(keys)
        generations = tuple(found.get(k) for k in keys)
        generations = None if any(g is None for g in generations) else generations
        marked = not retry_after and stamp is not None and generations == tuple(stamp)
        if marked:
            presence_mark(workspace_id=workspace_id, user_id=user_id, until=until)
        return Admission(retry_after=retry_after, generations=generations, presence_marked=marked)
    rl_key = cache.make_and_validate_key(f"voice-token-rl:{user_id}:{bucket}")
    presence_key = cache.make_and_validate_key(_presence_key(workspace_id, user_id))
    made = [cache.make_and_validate_key(k) for k in keys]
    expected = list(stamp) if stamp is not None else [b"", b""]
    want_session = bool(session_cache_key)
    count, gu, gw, marked, raw = _admit_eval(
        client(rl_key, write=True), [rl_key, presence_key, *made, session_cache_key or rl_key],
        [window + 5, allowed, until, max(1, until - int(now)), "1" if stamp is not None else "0", *expected,
         "1" if want_session else "0", session_raw if session_raw is not None else b""])
    retry_after = max(1, int((bucket + 1) * window - now)) if int(count) > allowed else 0
    generations = (gu, gw) if gu is not None and gw is not None else None
    return Admission(retry_after=retry_after, generations=generations, presence_marked=bool(marked),
                     session_raw=raw if want_session else None)


# ---------------------------------------------------------------------------
# Presence


def _presence_key(workspace_id: int, user_id: int) -> str:
    return f"voice-presence:v1:{workspace_id}:{user_id}"


def presence_mark(*, workspace_id: int, user_id: int, until: int) -> None:
    timeout = max(1, until - int(time.time()))
    cache.set(_presence_key(workspace_id, user_id), until, timeout)


def presence_clear(*, workspace_id: int, user_id: int) -> None:
    cache.delete(_presence_key(workspace_id, user_id))


def online_user_ids(*, workspace_id: int, user_ids, now: float | None = None) -> list[int]:
    """The members among `user_ids` holding a valid voice token (in the order given)."""
    user_ids = list(user_ids)
    if not user_ids:
        return []
    now = time.time() if now is None else now
    found = cache.get_many([_presence_key(workspace_id, uid) for uid in user_ids])
    return [uid for uid in user_ids if (found.get(_presence_key(workspace_id, uid)) or 0) > now]
