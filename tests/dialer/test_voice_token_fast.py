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


def test_a_rate_limited_request_does_not_mark_presence(member_client, member_user, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (1, 60)
    ready_workspace(workspace)
    now = time.time()
    assert voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                   now=now) == 0
    voice.presence_clear(workspace_id=workspace.pk, user_id=member_user.pk)
    retry_after = voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 60,
                                          now=now)
    assert retry_after >= 1
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == []


def test_admit_shares_keys_with_the_checked_path(member_user, workspace, settings):
    """The one-round-trip admit and the two-step path count in the same window and mark the same presence."""
    settings.VOICE_TOKEN_RATE_LIMIT = (2, 60)
    now = time.time()
    assert voice.voice_token_admit(workspace_id=workspace.pk, user_id=member_user.pk, until=int(now) + 120,
                                   now=now) == 0
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk], now=now) == [member_user.pk]
    assert voice.voice_token_rate_limited(user_id=member_user.pk, now=now) == 0
    assert voice.voice_token_rate_limited(user_id=member_user.pk, now=now) >= 1
