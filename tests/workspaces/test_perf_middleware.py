"""The cheaper login + workspace path: cached memberships (invalidated on every change), cached_db sessions,
the Redis cache backend that reuses its client, and the query bounds these buy."""
import os

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.cache import ReusingRedisCache
from tests.dialer.voice_fixtures import ready_workspace
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces import selectors
from workspaces.models import Membership

pytestmark = pytest.mark.django_db

SETTINGS_PAGE = "/settings/dialer/"
TOKEN = "/v1/voice/token"


def _membership_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "workspaces_membership" in q["sql"]]


def test_second_request_reads_the_membership_from_the_cache(admin_client):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(SETTINGS_PAGE).status_code == 200
    assert _membership_queries(queries.captured_queries) == []


def test_demoted_admin_gets_403_on_the_very_next_request(admin_client, admin_user, workspace):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200  # cached as admin
    membership = Membership.objects.get(user=admin_user, workspace=workspace)
    membership.role = Membership.Role.MEMBER
    membership.save(update_fields=["role"])
    assert admin_client.get(SETTINGS_PAGE).status_code == 403


def test_promoted_member_gets_the_settings_page_on_the_very_next_request(member_client, member_user, workspace):
    assert member_client.get(SETTINGS_PAGE).status_code == 403
    from workspaces.services import membership_create

    membership_create(workspace=workspace, user=member_user, role=Membership.Role.ADMIN)
    assert member_client.get(SETTINGS_PAGE).status_code == 200


def test_removed_member_has_no_workspace_on_the_very_next_request(member_client, member_user, workspace):
    ready_workspace(workspace)
    assert member_client.get(TOKEN).status_code == 200  # cached as a member
    Membership.objects.filter(user=member_user, workspace=workspace).delete()  # queryset delete: signals still fire
    response = member_client.get(TOKEN)
    assert response.status_code == 403
    assert response.json()["error"] == "no_workspace"
    assert member_client.get("/").status_code == 403


def test_deleted_workspace_is_gone_on_the_very_next_request(admin_client, workspace):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    workspace.delete()
    assert admin_client.get(SETTINGS_PAGE).status_code == 403


def test_membership_moved_to_another_user_leaves_the_first_user(admin_client, admin_user, workspace):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    someone = UserFactory(username="someone")
    membership = Membership.objects.get(user=admin_user, workspace=workspace)
    membership.user = someone
    membership.save()
    assert admin_client.get(SETTINGS_PAGE).status_code == 403


def test_renamed_workspace_shows_on_the_next_request(admin_client, workspace):
    assert "Acme" in admin_client.get("/").content.decode()
    workspace.name = "Renamed Corp"
    workspace.save()
    assert "Renamed Corp" in admin_client.get("/").content.decode()


def test_new_membership_is_seen_and_switching_uses_it(admin_client, admin_user, other_workspace):
    assert admin_client.get("/").status_code == 200
    MembershipFactory(workspace=other_workspace, user=admin_user, role=Membership.Role.MEMBER)
    assert admin_client.post("/workspaces/switch/", {"workspace_id": other_workspace.pk}).status_code == 302
    # Now a member (not admin) of "Other Co": the settings page is refused, the request's workspace is the new one.
    assert admin_client.get(SETTINGS_PAGE).status_code == 403
    assert "Other Co" in admin_client.get("/").content.decode()


def test_entry_read_before_an_uncommitted_change_is_not_served_after_commit(
    admin_client, admin_user, workspace, django_capture_on_commit_callbacks
):
    """A request that read the old rows while the change was uncommitted caches them under the generation it saw;
    the bump on commit makes that entry unusable."""
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    stale = selectors.memberships_cached(user=admin_user)  # the admin row, as a concurrent request saw it
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            membership = Membership.objects.get(user=admin_user, workspace=workspace)
            membership.role = Membership.Role.MEMBER
            membership.save(update_fields=["role"])
            # The concurrent request, still seeing the old row, writes it under the current generation.
            generation = cache.get(selectors._generation_key(admin_user.pk))
            cache.set(selectors._entry_key(admin_user.pk), (generation, stale), 60)
    assert admin_client.get(SETTINGS_PAGE).status_code == 403


def test_evicted_generation_starts_a_fresh_one(admin_client, admin_user, workspace):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    old_generation = cache.get(selectors._generation_key(admin_user.pk))
    cache.delete(selectors._generation_key(admin_user.pk))  # evicted (the entry survives)
    Membership.objects.filter(user=admin_user).update(role=Membership.Role.MEMBER)  # no signal
    assert admin_client.get(SETTINGS_PAGE).status_code == 403  # the old entry's tag matches no generation
    assert cache.get(selectors._generation_key(admin_user.pk)) not in (None, old_generation)


def test_cache_can_be_switched_off(admin_client, admin_user, workspace, settings):
    settings.MEMBERSHIP_CACHE_SECONDS = 0
    admin_client.get(SETTINGS_PAGE)
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(SETTINGS_PAGE).status_code == 200
    assert len(_membership_queries(queries.captured_queries)) == 1


def test_membership_for_request_falls_back_to_the_first_workspace(admin_user, workspace):
    zzz = WorkspaceFactory(name="Zzz")
    MembershipFactory(workspace=zzz, user=admin_user)
    assert selectors.membership_for_request(user=admin_user, workspace_id=zzz.pk).workspace == zzz
    assert selectors.membership_for_request(user=admin_user, workspace_id=None).workspace == workspace
    assert selectors.membership_for_request(user=admin_user, workspace_id=999_999).workspace == workspace
    assert selectors.membership_for_request(user=UserFactory(), workspace_id=None) is None


def test_token_endpoint_query_bound(member_client, workspace, django_assert_max_num_queries):
    ready_workspace(workspace)
    member_client.get(TOKEN)  # warms the session, membership and phone-system caches
    # The user (Django's auth lookup) and the workspace's Twilio connection; no session or membership query.
    with django_assert_max_num_queries(2):
        assert member_client.get(TOKEN).status_code == 200


# ---------------------------------------------------------------------------
# Sessions: cached_db, with the embedded file cache and with the test cache


def test_sessions_are_cached_db():
    assert django_settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"


@pytest.fixture(params=["locmem", "filebased"])
def session_cache(request, settings, tmp_path):
    if request.param == "filebased":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                       "LOCATION": str(tmp_path / "cache")}}
    from django.core.cache import caches

    caches["default"].clear()
    yield request.param
    caches["default"].clear()


def test_login_is_read_from_the_cache_and_survives_a_cache_flush(session_cache, admin_user):
    client = Client()
    assert client.post("/login/", {"username": "alice", "password": "pw-for-tests"}).status_code == 302
    assert Session.objects.count() == 1  # written through to the database
    assert client.get(SETTINGS_PAGE).status_code == 200  # stores the current workspace in the session (a write)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(SETTINGS_PAGE).status_code == 200
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]
    from django.core.cache import caches

    caches["default"].clear()  # a cache restart does not log anyone out
    assert client.get(SETTINGS_PAGE).status_code == 200


def test_logout_flushes_the_session_everywhere(session_cache, admin_user):
    client = Client()
    client.post("/login/", {"username": "alice", "password": "pw-for-tests"})
    old_cookie = client.cookies["sessionid"].value
    assert client.post("/logout/").status_code == 302
    assert not Session.objects.filter(session_key=old_cookie).exists()
    replay = Client()
    replay.cookies["sessionid"] = old_cookie  # the old cookie is worth nothing now
    response = replay.get(SETTINGS_PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_password_change_elsewhere_ends_the_session(admin_client, admin_user):
    assert admin_client.get(SETTINGS_PAGE).status_code == 200
    admin_user.set_password("a-new-password-123")
    admin_user.save()
    response = admin_client.get(SETTINGS_PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# ---------------------------------------------------------------------------
# The Redis backend that keeps one client per pool


def test_reusing_redis_cache_builds_one_client_per_pool():
    backend = ReusingRedisCache("redis://127.0.0.1:6379/15", {})
    client = backend._cache.get_client("k")
    assert backend._cache.get_client("k", write=True) is client
    assert client.connection_pool is backend._cache._pools[0]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis on 127.0.0.1)")
def test_reusing_redis_cache_round_trip():
    backend = ReusingRedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "perf-test"})
    backend.set("a", {"x": 1}, 10)
    assert backend.get("a") == {"x": 1}
    assert backend.get_many(["a", "missing"]) == {"a": {"x": 1}}
    backend.set("n", 1, 10)
    assert backend.incr("n") == 2
    backend.delete_many(["a", "n"])
    assert backend.get("a") is None
