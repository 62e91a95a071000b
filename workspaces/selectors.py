import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from .models import Membership, Workspace

# The middleware's membership lookup is cached per user (see `memberships_cached`).
MEMBERSHIP_CACHE_SECONDS = 60
MEMBERSHIP_GENERATION_SECONDS = 7 * 24 * 3600


def memberships_for_user(*, user: AbstractBaseUser):
    return Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name")


def membership_get(*, user: AbstractBaseUser, workspace_id: int | None) -> Membership | None:
    """The user's membership in workspace_id, or their first one when workspace_id is None or not theirs."""
    qs = memberships_for_user(user=user)
    if workspace_id is not None:
        found = qs.filter(workspace_id=workspace_id).first()
        if found is not None:
            return found
    return qs.first()


def workspace_members(*, workspace: Workspace):
    return Membership.objects.select_related("user").filter(workspace=workspace).order_by("user__username")


# ---------------------------------------------------------------------------
# The per-request membership lookup, cached.
#
# One cache entry per user holds all of the user's memberships (with their workspaces),
# tagged with the user's *generation*: a random token that `workspaces.signals` replaces
# whenever a Membership or Workspace of that user is saved or deleted (at once and again
# on commit). An entry is only served when its tag equals the current generation, so a
# role change or a removal made through the ORM takes effect on the very next request;
# the entry and the generation are read together in one round trip (get_many). A reader
# that loaded the rows before a concurrent change tags its entry with the old generation,
# which the change has already replaced: that entry is never served.


def _generation_key(user_id: int) -> str:
    return f"ws-membership-gen:v1:{user_id}"


def user_generation_key(user_id: int) -> str:
    """The cache key of the user's generation: replaced whenever the user (password, active flag…), one of their
    memberships or one of their workspaces changes (`workspaces.signals`). Other per-user caches tag entries
    with it, as the membership cache does."""
    return _generation_key(user_id)


_shape = ""


def _entry_key(user_id: int) -> str:
    # The models' field names are part of the key: after a deploy that changes them, entries pickled by the
    # previous code are not read back.
    global _shape
    if not _shape:
        import zlib

        names = ",".join(f.attname for model in (Membership, Workspace) for f in model._meta.concrete_fields)
        _shape = format(zlib.crc32(names.encode()), "08x")
    return f"ws-memberships:v1:{_shape}:{user_id}"


def _cache_seconds() -> int:
    return int(getattr(settings, "MEMBERSHIP_CACHE_SECONDS", MEMBERSHIP_CACHE_SECONDS))


def memberships_cached(*, user: AbstractBaseUser) -> list[Membership]:
    """All of the user's memberships (workspace loaded), ordered like `memberships_for_user`."""
    seconds = _cache_seconds()
    if seconds <= 0:
        return list(memberships_for_user(user=user))
    gen_key, entry_key = _generation_key(user.pk), _entry_key(user.pk)
    found = cache.get_many([gen_key, entry_key])
    generation, entry = found.get(gen_key), found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        return entry[1]
    if generation is None:
        # Never seen (or evicted): start a fresh generation before reading the rows, so an
        # entry written now can be invalidated by a change that commits while we read.
        cache.add(gen_key, secrets.token_hex(8), MEMBERSHIP_GENERATION_SECONDS)
        generation = cache.get(gen_key)
    memberships = list(memberships_for_user(user=user))
    if generation is not None:
        cache.set(entry_key, (generation, memberships), seconds)
    return memberships


def membership_for_request(*, user: AbstractBaseUser, workspace_id: int | None) -> Membership | None:
    """`membership_get` from the cached memberships: the one of workspace_id, else the user's first."""
    memberships = memberships_cached(user=user)
    chosen = None
    if workspace_id is not None:
        chosen = next((m for m in memberships if m.workspace_id == workspace_id), None)
    if chosen is None and memberships:
        chosen = memberships[0]
    if chosen is not None:
        chosen.user = user  # the request's user: no query when a view reads membership.user
    return chosen


def membership_cache_bump(*, user_id: int) -> None:
    """A new generation for the user: their cached memberships are not served any more."""
    cache.set(_generation_key(user_id), secrets.token_hex(8), MEMBERSHIP_GENERATION_SECONDS)


# ---------------------------------------------------------------------------
# The logged-in user, checked the way Django's `auth.get_user` checks it, for views that load the user
# together with what they need in one query (`resolves_own_workspace`). Anything these helpers cannot
# decide (another backend, a hash made with SECRET_KEY_FALLBACKS) is left to Django's own code.

FAST_PATH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def session_user_claim(session) -> int | None:
    """The user id a session claims to be logged in as, when Django's ModelBackend logged it in; else None.

    Unverified: the caller loads the user and must pass it through `session_user_verified`.
    """
    from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model
    from django.core.exceptions import ValidationError

    backend = session.get(BACKEND_SESSION_KEY)
    if backend != FAST_PATH_BACKEND or backend not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        return int(get_user_model()._meta.pk.to_python(session[SESSION_KEY]))
    except (KeyError, TypeError, ValueError, ValidationError):
        return None


def session_user_verified(session, *, user: AbstractBaseUser) -> bool:
    """True when `user` (loaded by id from `session_user_claim`) may use this session, as `auth.get_user` decides:
    the backend would return it (`is_active`) and the session's auth hash matches its current password hash
    under the current SECRET_KEY. False means "ask Django" (it flushes sessions that fail), not "refuse"."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.contrib.auth.backends import ModelBackend
    from django.utils.crypto import constant_time_compare

    if not ModelBackend().user_can_authenticate(user):
        return False
    session_hash = session.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())
