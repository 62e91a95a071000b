import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from workspaces.models import Membership, Workspace

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
        chosen.all_memberships = memberships  # the top bar's workspace switcher, without another query
    return chosen


def membership_cache_bump(*, user_id: int) -> None:
    """A new generation for the user: their cached memberships are not served any more."""
    cache.set(_generation_key(user_id), secrets.token_hex(8), MEMBERSHIP_GENERATION_SECONDS)


def audit_entries(*, workspace: Workspace):
    from workspaces.models import AuditEntry

    return AuditEntry.objects.filter(workspace=workspace).select_related("actor").order_by("-created_at", "-pk")
