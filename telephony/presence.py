"""Who is online in the browser dialer, and the dialer's voice identities: shared by the dialer (which marks
presence when it issues a voice token and rings members on inbound calls) and by calls (a warm transfer to the
dialer's reps rings the online ones), which may not import each other.

A member is "online" while the last voice token issued to them in that workspace is still valid. It lives in the
cache, one key per member, so marking is one write and reading all members is one `get_many`.
"""
from __future__ import annotations

import re
import time

from django.core.cache import cache

IDENTITY_RE = re.compile(r"^ws(?P<workspace_id>\d+)-u(?P<user_id>\d+)$")
CLIENT_PREFIX = "client:"


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
