"""GET /v1/voice/token: every change made between two requests is honoured by the very next one.

There is one path (the checked ORM path); each request reads what it needs, so a password change, a
deactivation, a removed membership, a released number, a credentials error, a rotated API key or a logout in
another tab takes effect at once. The query bounds are measured on the current code; the `+ SAVEPOINT` notes
are the savepoint/release pair Django adds because pytest-django runs each test inside a transaction (the
same count on SQLite and PostgreSQL).
"""
import time

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore
from django.test import Client
from django.urls import reverse

from dialer import tokens
from telephony import services as telephony_services
from telephony import twilio_gateway
from telephony.models import PhoneNumber, TwilioConnection
from telephony.selectors import phone_system_status
from tests.dialer.settings_helpers import connect_byok
from tests.dialer.voice_fixtures import ready_workspace
from workspaces.middleware import SESSION_KEY as WORKSPACE_SESSION_KEY
from workspaces.models import Membership

pytestmark = pytest.mark.django_db

URL = "/v1/voice/token"

# A token for a session that already knows its workspace: the user and the connection (the session, the
# membership and the phone-system status come from the cache).
WARM_TOKEN_QUERIES = 2
# The first token of a session, the status just invalidated: + the membership, the phone-system status
# (connection, numbers), and the session's save of its workspace (UPDATE + SAVEPOINT/RELEASE).
FIRST_TOKEN_QUERIES = 8


@pytest.fixture
def warm(member_client, workspace):
    """A ready workspace whose member has already had a token (the session knows its workspace)."""
    connection = ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    assert member_client.session[WORKSPACE_SESSION_KEY] == workspace.pk
    return connection


def _claims(response, connection):
    assert response.status_code == 200, response.content
    return jwt.decode(response.json()["token"], connection.api_key_secret, algorithms=["HS256"])


def test_the_token_is_a_few_queries_and_never_cached(member_client, member_user, workspace,
                                                     django_assert_max_num_queries):
    connection = ready_workspace(workspace)
    with django_assert_max_num_queries(FIRST_TOKEN_QUERIES):
        first = member_client.get(URL)
    assert first.status_code == 200
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES):
        response = member_client.get(URL)
    claims = _claims(response, connection)
    assert claims["grants"]["identity"] == f"ws{workspace.pk}-u{member_user.pk}"
    assert "no-store" in response["Cache-Control"] and response["Cache-Control"].startswith("max-age=0")
    assert "Cookie" in response["Vary"]


def test_a_password_changed_elsewhere_ends_the_session(member_client, member_user, warm,
                                                       django_assert_max_num_queries):
    member_user.set_password("a-new-password-1")
    member_user.save()
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES + 1):  # the user, the session's flush (no connection)
        response = member_client.get(URL)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    assert SESSION_KEY not in member_client.session  # Django flushed it, as on any other page
    assert member_client.get(URL).status_code == 401


def test_a_deactivated_user_gets_401(member_client, member_user, warm, django_assert_max_num_queries):
    member_user.is_active = False
    member_user.save(update_fields=["is_active"])
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES):
        response = member_client.get(URL)
    assert response.status_code == 401
    assert "token" not in response.json()


def test_a_removed_member_gets_no_token(member_client, member_user, warm, django_assert_max_num_queries):
    Membership.objects.filter(user=member_user).delete()
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES):
        response = member_client.get(URL)
    assert response.status_code == 403
    assert response.json()["error"] == "no_workspace" and "token" not in response.json()


def test_a_member_moved_to_another_workspace_gets_a_token_of_that_workspace(member_client, member_user, workspace,
                                                                            other_workspace, warm):
    Membership.objects.filter(user=member_user).delete()
    Membership.objects.create(workspace=other_workspace, user=member_user, role=Membership.Role.MEMBER)
    other = ready_workspace(other_workspace, numbers=("+15125550199",))
    claims = _claims(member_client.get(URL), other)
    assert claims["grants"]["identity"] == f"ws{other_workspace.pk}-u{member_user.pk}"
    assert claims["sub"] == other.account_sid
    assert member_client.session[WORKSPACE_SESSION_KEY] == other_workspace.pk


def test_a_session_pointing_at_a_workspace_that_is_not_theirs_gets_their_own(member_client, member_user, workspace,
                                                                               other_workspace, warm):
    ready_workspace(other_workspace, numbers=("+15125550199",))
    session = member_client.session
    session[WORKSPACE_SESSION_KEY] = other_workspace.pk
    session.save()
    claims = _claims(member_client.get(URL), warm)
    assert claims["grants"]["identity"] == f"ws{workspace.pk}-u{member_user.pk}"
    assert claims["sub"] == warm.account_sid
    assert member_client.session[WORKSPACE_SESSION_KEY] == workspace.pk


def test_a_switch_to_another_of_their_workspaces_is_honoured(member_client, member_user, other_workspace, warm):
    Membership.objects.create(workspace=other_workspace, user=member_user, role=Membership.Role.MEMBER)
    other = ready_workspace(other_workspace, numbers=("+15125550199",))
    session = member_client.session
    session[WORKSPACE_SESSION_KEY] = other_workspace.pk
    session.save()
    claims = _claims(member_client.get(URL), other)
    assert claims["grants"]["identity"] == f"ws{other_workspace.pk}-u{member_user.pk}"


def test_a_logout_in_another_tab_ends_this_one(member_client, warm, django_assert_max_num_queries):
    SessionStore(member_client.session.session_key).delete()  # "Log out" in another tab
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES):
        response = member_client.get(URL)
    assert response.status_code == 401


def test_logging_out_through_the_page_ends_the_token_too(member_client, warm):
    other_tab = Client()
    other_tab.cookies[settings.SESSION_COOKIE_NAME] = member_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert other_tab.post(reverse("logout")).status_code == 302
    assert member_client.cookies[settings.SESSION_COOKIE_NAME].value  # this tab still sends its cookie
    assert member_client.get(URL).status_code == 401


# --- changes made through the services, against the Twilio sandbox ---------------------------------------------


@pytest.fixture
def connected(member_client, workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    """A workspace connected to a sandbox account (one number imported), whose member has had a token."""
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks,
                                          numbers=("+15125550100",))
    assert connection.api_key_sid and connection.twiml_app_sid
    assert PhoneNumber.objects.filter(workspace=workspace).count() == 1
    _claims(member_client.get(URL), connection)
    return twilio_sandbox, connection


def test_a_released_number_is_told_at_once(member_client, workspace, connected, django_assert_max_num_queries):
    number = PhoneNumber.objects.get(workspace=workspace)
    telephony_services.number_release(workspace=workspace, number_id=number.pk)
    # The user, and the phone-system status read again (the release dropped it): connection, numbers.
    with django_assert_max_num_queries(WARM_TOKEN_QUERIES + 1):
        response = member_client.get(URL)
    assert response.status_code == 409
    body = response.json()
    assert body["banner"] == "Pick a phone number" and body["error"] == "no_number" and "token" not in body


def test_a_credentials_error_is_told_at_once(member_client, workspace, connected, django_capture_on_commit_callbacks):
    sandbox, connection = connected
    sandbox.set_account_status(connection.account_sid, "suspended")
    with django_capture_on_commit_callbacks(execute=True):
        telephony_services.connection_revalidate(workspace=workspace)
    assert TwilioConnection.objects.get(pk=connection.pk).status == TwilioConnection.Status.ERROR
    response = member_client.get(URL)
    assert response.status_code == 409
    body = response.json()
    assert body["banner"] == "Phone system error" and body["error"] == "error" and "token" not in body
    assert "suspended" in body["message"]


def test_a_credentials_error_written_directly_is_told_once_the_status_is_dropped(member_client, workspace, warm):
    """Whoever writes the status drops the cached banner (as every telephony service does): next request, 409."""
    TwilioConnection.objects.filter(pk=warm.pk).update(status=TwilioConnection.Status.ERROR,
                                                       error_message="Authenticate")
    from telephony.selectors import phone_system_status_invalidate

    phone_system_status_invalidate(workspace_id=workspace.pk)
    response = member_client.get(URL)
    assert response.status_code == 409 and response.json()["banner"] == "Phone system error"


def test_a_rotated_api_key_signs_the_next_token(member_client, workspace, connected,
                                                django_capture_on_commit_callbacks):
    sandbox, connection = connected
    old_sid, old_secret = connection.api_key_sid, connection.api_key_secret
    # The key is deleted in the Twilio console; "Check again" makes a new one.
    twilio_gateway.api_key_delete(creds=connection.credentials(), key_sid=old_sid)
    with django_capture_on_commit_callbacks(execute=True):
        telephony_services.connection_revalidate(workspace=workspace)
    rotated = TwilioConnection.objects.get(pk=connection.pk)
    assert rotated.status == TwilioConnection.Status.CONNECTED
    assert rotated.api_key_sid != old_sid and rotated.api_key_secret != old_secret
    token = member_client.get(URL).json()["token"]
    assert jwt.decode(token, rotated.api_key_secret, algorithms=["HS256"])["iss"] == rotated.api_key_sid
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, old_secret, algorithms=["HS256"])


def test_a_rotated_api_key_saved_on_the_row_signs_the_next_token(member_client, warm):
    warm.api_key_sid, warm.api_key_secret = "SK" + "2" * 32, "new-secret-" + "3" * 32
    warm.save(update_fields=["api_key_sid", "api_key_secret"])
    claims = jwt.decode(member_client.get(URL).json()["token"], "new-secret-" + "3" * 32, algorithms=["HS256"])
    assert claims["iss"] == "SK" + "2" * 32


def test_the_status_read_is_shared_by_the_token_and_the_banner(member_client, workspace, connected):
    number = PhoneNumber.objects.get(workspace=workspace)
    telephony_services.number_release(workspace=workspace, number_id=number.pk)
    assert phone_system_status(workspace_id=workspace.pk).state == "no_number"
    assert member_client.get(URL).json()["error"] == "no_number"


# --- the rate limit -----------------------------------------------------------------------------------------------


def test_the_rate_limit_is_per_user_across_sessions(member_client, member_user, admin_client, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (2, 60)
    ready_workspace(workspace)
    second_tab = Client()
    second_tab.force_login(member_user)  # another session of the same user
    assert member_client.get(URL).status_code == 200
    assert second_tab.get(URL).status_code == 200
    limited = member_client.get(URL)
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert second_tab.get(URL).status_code == 429
    assert admin_client.get(URL).status_code == 200  # another user has their own budget


def test_a_rate_limited_request_does_not_mark_presence(member_client, member_user, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (1, 60)
    ready_workspace(workspace)
    assert member_client.get(URL).status_code == 200
    tokens.presence_clear(workspace_id=workspace.pk, user_id=member_user.pk)
    assert member_client.get(URL).status_code == 429
    assert tokens.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == []


def test_the_rate_limit_window_ends(member_user, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (1, 60)
    now = (time.time() // 60) * 60 + 1
    assert tokens.voice_token_rate_limited(user_id=member_user.pk, now=now) == 0
    assert tokens.voice_token_rate_limited(user_id=member_user.pk, now=now) == 59
    assert tokens.voice_token_rate_limited(user_id=member_user.pk, now=now + 60) == 0
