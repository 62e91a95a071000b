"""The voice token's one-query path: it answers only when Django's own rules would give the same answer."""
import time

import pytest
from django.contrib.auth import SESSION_KEY

from dialer import voice
from dialer.models import PhoneNumber
from dialer.selectors import phone_system_status_invalidate
from tests.dialer.voice_fixtures import ready_workspace
from workspaces.middleware import SESSION_KEY as WORKSPACE_SESSION_KEY
from workspaces.models import Membership

pytestmark = pytest.mark.django_db

URL = "/v1/voice/token"


def test_the_common_case_is_one_query(member_client, workspace, django_assert_num_queries):
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200  # sets the session's workspace
    assert member_client.session[WORKSPACE_SESSION_KEY] == workspace.pk
    with django_assert_num_queries(1):
        response = member_client.get(URL)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert "no-store" in response["Cache-Control"]


def test_a_password_changed_elsewhere_ends_the_session(member_client, member_user, workspace):
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    member_user.set_password("a-new-password-1")
    member_user.save()
    response = member_client.get(URL)
    assert response.status_code == 401
    assert SESSION_KEY not in member_client.session  # Django flushed it, as on any other page
    assert member_client.get(URL).status_code == 401


def test_a_deactivated_user_gets_401(member_client, member_user, workspace):
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    member_user.is_active = False
    member_user.save(update_fields=["is_active"])
    assert member_client.get(URL).status_code == 401


def test_a_removed_member_gets_no_token(member_client, member_user, workspace):
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    Membership.objects.filter(user=member_user).delete()
    response = member_client.get(URL)
    assert response.status_code == 403
    assert response.json()["error"] == "no_workspace"


def test_a_session_pointing_at_a_workspace_that_is_not_theirs_gets_their_own(member_client, member_user, workspace,
                                                                               other_workspace):
    ready_workspace(workspace)
    ready_workspace(other_workspace, numbers=("+15125550199",))
    session = member_client.session
    session[WORKSPACE_SESSION_KEY] = other_workspace.pk
    session.save()
    body = member_client.get(URL).json()
    assert body["identity"] == f"ws{workspace.pk}-u{member_user.pk}"
    assert member_client.session[WORKSPACE_SESSION_KEY] == workspace.pk


def test_a_workspace_that_lost_its_number_is_told_so(member_client, workspace):
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    PhoneNumber.objects.filter(workspace=workspace).delete()
    phone_system_status_invalidate(workspace_id=workspace.pk)  # as the release service does
    response = member_client.get(URL)
    assert response.status_code == 409
    assert response.json()["banner"] == "Pick a phone number"


def test_a_rate_limited_request_does_not_mark_presence(member_user, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (1, 60)
    now = time.time()
    stamp = voice.voice_context_generations(user_id=member_user.pk, workspace_id=workspace.pk)
    first = voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60, now=now,
                                    stamp=stamp)
    assert (first.retry_after, first.presence_marked) == (0, True)
    voice.presence_clear(workspace_id=workspace.pk, user_id=member_user.pk)
    second = voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                     now=now, stamp=stamp)
    assert second.retry_after >= 1 and not second.presence_marked
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == []


def test_admit_marks_presence_only_for_a_current_stamp(member_user, workspace):
    now = time.time()
    stamp = voice.voice_context_generations(user_id=member_user.pk, workspace_id=workspace.pk)
    assert voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                   now=now, stamp=None).presence_marked is False
    voice.workspace_generation_bump(workspace_id=workspace.pk)
    stale = voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                    now=now, stamp=stamp)
    assert not stale.presence_marked and stale.generations is not None and stale.generations != tuple(stamp)
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk], now=now) == []
    current = voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                      now=now, stamp=stale.generations)
    assert current.presence_marked
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk], now=now) == [member_user.pk]


def test_admit_shares_the_counter_with_the_checked_path(member_user, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (2, 60)
    now = time.time()
    assert voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 120,
                                   now=now).retry_after == 0
    assert voice.voice_token_rate_limited(user_id=member_user.pk, now=now) == 0
    assert voice.voice_token_rate_limited(user_id=member_user.pk, now=now) >= 1


# --- the per-process context: every change made after it was cached is honoured on the very next request ---

@pytest.fixture
def warm(member_client, workspace):
    connection = ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200  # the session learns its workspace
    assert member_client.get(URL).status_code == 200  # the context is cached
    return connection


def test_a_warm_token_needs_no_sql(member_client, member_user, workspace, warm, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = member_client.get(URL)
    assert response.status_code == 200
    assert response.json()["identity"] == f"ws{workspace.pk}-u{member_user.pk}"
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == [member_user.pk]


def test_warm_password_change_ends_the_session(member_client, member_user, warm):
    member_user.set_password("another-password-2")
    member_user.save()
    assert member_client.get(URL).status_code == 401


def test_warm_deactivation_is_honoured(member_client, member_user, warm):
    member_user.is_active = False
    member_user.save(update_fields=["is_active"])
    assert member_client.get(URL).status_code == 401


def test_warm_membership_removal_is_honoured(member_client, member_user, warm):
    Membership.objects.filter(user=member_user).delete()
    assert member_client.get(URL).status_code == 403


def test_warm_number_release_is_honoured(member_client, workspace, warm):
    PhoneNumber.objects.filter(workspace=workspace).delete()
    phone_system_status_invalidate(workspace_id=workspace.pk)
    assert member_client.get(URL).status_code == 409


def test_warm_credentials_error_is_honoured(member_client, workspace, warm):
    warm.status = warm.Status.ERROR
    warm.error_message = "Authenticate"
    warm.save(update_fields=["status", "error_message"])
    phone_system_status_invalidate(workspace_id=workspace.pk)
    response = member_client.get(URL)
    assert response.status_code == 409 and response.json()["banner"] == "Phone system error"


def test_warm_rotated_api_key_signs_the_next_token(member_client, workspace, warm):
    import jwt

    warm.api_key_sid, warm.api_key_secret = "SK" + "2" * 32, "new-secret-" + "3" * 32
    warm.save(update_fields=["api_key_sid", "api_key_secret"])
    token = member_client.get(URL).json()["token"]
    claims = jwt.decode(token, "new-secret-" + "3" * 32, algorithms=["HS256"])
    assert claims["iss"] == "SK" + "2" * 32


def test_an_evicted_generation_reads_the_context_again(member_client, member_user, workspace, warm,
                                                        django_assert_num_queries):
    from django.core.cache import cache

    cache.delete(voice.workspace_generation_key(workspace.pk))
    with django_assert_num_queries(1):
        assert member_client.get(URL).status_code == 200
    with django_assert_num_queries(0):
        assert member_client.get(URL).status_code == 200


def test_warm_logout_elsewhere_ends_the_session(member_client, warm):
    from django.contrib.sessions.backends.cached_db import SessionStore

    SessionStore(member_client.session.session_key).delete()  # "Log out" in another tab
    assert member_client.get(URL).status_code == 401


def test_warm_workspace_switch_is_honoured(member_client, member_user, other_workspace, warm):
    Membership.objects.create(workspace=other_workspace, user=member_user, role=Membership.Role.MEMBER)
    ready_workspace(other_workspace, numbers=("+15125550199",))
    session = member_client.session
    session[WORKSPACE_SESSION_KEY] = other_workspace.pk
    session.save()
    assert member_client.get(URL).json()["identity"] == f"ws{other_workspace.pk}-u{member_user.pk}"


def test_warm_token_answers_vary_on_the_cookie(member_client, warm):
    response = member_client.get(URL)
    assert "Cookie" in response["Vary"]
    assert "no-store" in response["Cache-Control"]


def test_warm_token_on_redis_does_not_load_the_session(member_client, warm, monkeypatch):
    """One Redis round trip: the script has checked the session's stored bytes, Django does not load it."""
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.core.cache import cache

    if not hasattr(cache, "loads_raw"):
        pytest.skip("needs the Redis cache (REDIS_URL)")
    member_client.get(URL)  # this process now knows the session
    loads = []
    original = SessionStore.load
    monkeypatch.setattr(SessionStore, "load", lambda self: loads.append(1) or original(self))
    assert member_client.get(URL).status_code == 200
    assert loads == []
