"""The outbound webhook's one-statement path: cached credentials, and an INSERT that re-checks them.

Every change made after the credentials were cached must be honoured by the very next call.
"""
import secrets
import xml.etree.ElementTree as ET

import pytest

from dialer.call_selectors import webhook_credentials_cached
from dialer.models import Call, CallerId, TwilioConnection
from tests.dialer.test_voice_webhooks import outbound_params, outbound_path
from tests.dialer.voice_fixtures import ready_workspace, signed_post
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def _post(client, workspace, connection, user, token=None, **extra):
    params = outbound_params(connection, user, **extra)
    response = signed_post(client, outbound_path(workspace), params, token or connection.auth_token)
    return response, params


def _dial(response):
    assert response.status_code == 200, response.content
    return ET.fromstring(response.content).find("Dial")


@pytest.fixture
def warm(client, workspace, member_user):
    """A workspace whose credentials this process has cached (one call made)."""
    connection = ready_workspace(workspace)
    response, _ = _post(client, workspace, connection, member_user)
    assert _dial(response) is not None
    assert webhook_credentials_cached(workspace_id=workspace.pk) is not None
    return connection


def test_a_warm_call_is_one_statement_with_the_same_answer(client, workspace, member_user, warm,
                                                         django_assert_num_queries):
    with django_assert_num_queries(1):
        response, params = _post(client, workspace, warm, member_user)
    dial = _dial(response)
    assert dial.get("callerId") == "+15125550100" and dial.find("Number").text == "+14155550142"
    call = Call.objects.get(sid=params["CallSid"])
    assert (call.user, call.status, call.caller_id, call.to_number) == (member_user, "initiated", "+15125550100",
                                                                       "+14155550142")


def test_a_rotated_auth_token_is_used_at_once(client, workspace, member_user, warm):
    old = warm.auth_token
    warm.auth_token = secrets.token_hex(16)
    warm.save(update_fields=["auth_token"])
    assert _dial(_post(client, workspace, warm, member_user)[0]) is not None  # signed with the new token
    response, params = _post(client, workspace, warm, member_user, token=old)
    assert response.status_code == 403
    assert not Call.objects.filter(sid=params["CallSid"]).exists()


def test_a_request_signed_with_the_old_token_while_cached_is_refused(client, workspace, member_user, warm):
    """The cache still holds the old token: the signature passes there, the INSERT's guard does not."""
    old = warm.auth_token
    TwilioConnection.objects.filter(pk=warm.pk).update(auth_token=secrets.token_hex(16))  # no signals at all
    TwilioConnection.objects.get(pk=warm.pk).save()  # re-encrypt through the field
    response, params = _post(client, workspace, warm, member_user, token=old)
    assert response.status_code == 403
    assert not Call.objects.filter(sid=params["CallSid"]).exists()


def test_a_forged_signature_is_403_and_writes_nothing(client, workspace, member_user, warm):
    response, params = _post(client, workspace, warm, member_user, token=secrets.token_hex(16))
    assert response.status_code == 403
    assert not Call.objects.filter(sid=params["CallSid"]).exists()


def test_another_account_sid_is_403(client, workspace, member_user, warm):
    response, _ = _post(client, workspace, warm, member_user, AccountSid="AC" + "0" * 32)
    assert response.status_code == 403


def test_a_member_removed_after_caching_cannot_call(client, workspace, member_user, warm):
    Membership.objects.filter(user=member_user).delete()
    response, params = _post(client, workspace, warm, member_user)
    assert _dial(response) is None
    assert Call.objects.get(sid=params["CallSid"]).status == Call.Status.REFUSED


def test_a_caller_id_removed_after_caching_is_refused(client, workspace, member_user, warm):
    CallerId.objects.filter(workspace=workspace).delete()
    response, params = _post(client, workspace, warm, member_user)
    assert _dial(response) is None
    assert Call.objects.get(sid=params["CallSid"]).refusal_reason == "caller ID not owned or verified by the workspace"


def test_a_country_change_after_caching_applies_to_local_numbers(client, workspace, member_user, warm):
    workspace.default_country = "GB"
    workspace.save(update_fields=["default_country"])
    response, params = _post(client, workspace, warm, member_user, To="020 7946 0018")
    assert _dial(response).find("Number").text == "+442079460018"


def test_a_retried_call_sid_gets_the_same_answer_and_one_row(client, workspace, member_user, warm):
    params = outbound_params(warm, member_user)
    first = signed_post(client, outbound_path(workspace), params, warm.auth_token).content
    second = signed_post(client, outbound_path(workspace), params, warm.auth_token).content
    assert first == second
    assert Call.objects.filter(sid=params["CallSid"]).count() == 1


def test_a_refused_call_retried_stays_refused(client, workspace, member_user, warm):
    params = outbound_params(warm, member_user, CallerId="+19995550100")
    first = signed_post(client, outbound_path(workspace), params, warm.auth_token).content
    assert b"<Dial" not in first
    assert signed_post(client, outbound_path(workspace), params, warm.auth_token).content == first
