"""The dialer's outbound TwiML webhook (`dialer.webhooks.voice_outbound`): every change made between two calls is
honoured by the very next call.

One path: each request reads the workspace's connection (its auth token decrypted for this request only), the
caller's membership and caller ID, and inserts the Call. The query bounds are measured on the current code; the
Call's INSERT sits in a savepoint here because pytest-django runs each test inside a transaction (the same count
on SQLite and PostgreSQL; in autocommit production it is the INSERT alone).
"""
import secrets
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from dialer import services as dialer_services
from dialer.models import Call
from telephony import services as telephony_services
from telephony.models import CallerId, TwilioConnection
from tests.dialer.test_voice_webhooks import outbound_params, outbound_path
from tests.dialer.voice_fixtures import public_url, ready_workspace, signed_post
from workspaces.models import Membership

pytestmark = pytest.mark.django_db

# The connection (with its workspace), the member and the caller ID (one query), the do-not-call list,
# SAVEPOINT, INSERT, RELEASE.
CALL_QUERIES = 6
# A request refused by the signature or the AccountSid check: the connection alone; nothing is written.
REFUSED_REQUEST_QUERIES = 1
# A retried CallSid: + the INSERT's rollback to the savepoint and the stored Call (its answer).
RETRY_QUERIES = 8


def _post(client, workspace, connection, user, *, token=None, **extra):
    params = outbound_params(connection, user, **extra)
    response = signed_post(client, outbound_path(workspace), params, token or connection.auth_token)
    return response, params


def _dial(response):
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content).find("Dial")


def _said(response) -> str:
    root = ET.fromstring(response.content)
    assert root.find("Dial") is None and root.find("Hangup") is not None
    return root.find("Say").text


@pytest.fixture
def called(client, workspace, member_user):
    """A ready workspace whose member has already made one call."""
    connection = ready_workspace(workspace, verified=("+13105550111",))
    response, params = _post(client, workspace, connection, member_user)
    assert _dial(response) is not None
    return connection


def test_a_call_is_a_few_queries_and_recorded(client, workspace, member_user, called, django_assert_max_num_queries):
    with django_assert_max_num_queries(CALL_QUERIES):
        response, params = _post(client, workspace, called, member_user)
    dial = _dial(response)
    assert dial.get("callerId") == "+15125550100" and dial.find("Number").text == "+14155550142"
    call = Call.objects.get(sid=params["CallSid"])
    assert (call.workspace_id, call.user, call.status, call.caller_id, call.to_number) == (
        workspace.pk, member_user, Call.Status.INITIATED, "+15125550100", "+14155550142")


def test_a_rotated_auth_token_is_used_at_once(client, workspace, member_user, called, django_assert_max_num_queries):
    old = called.auth_token
    called.auth_token = secrets.token_hex(16)
    called.save(update_fields=["auth_token"])
    with django_assert_max_num_queries(CALL_QUERIES):
        response, _ = _post(client, workspace, called, member_user)  # Twilio signs with the new token
    assert _dial(response) is not None
    with django_assert_max_num_queries(REFUSED_REQUEST_QUERIES):
        response, params = _post(client, workspace, called, member_user, token=old)
    assert response.status_code == 403
    assert not Call.objects.filter(sid=params["CallSid"]).exists()


def test_a_token_rotated_without_signals_is_used_at_once(client, workspace, member_user, called):
    """A queryset update (no save(), no signals): nothing is kept between requests, so nothing can be stale."""
    old, new = called.auth_token, secrets.token_hex(16)
    TwilioConnection.objects.filter(pk=called.pk).update(auth_token=new)
    assert TwilioConnection.objects.get(pk=called.pk).auth_token == new
    response, params = _post(client, workspace, called, member_user, token=old)
    assert response.status_code == 403 and not Call.objects.filter(sid=params["CallSid"]).exists()
    response, params = _post(client, workspace, called, member_user, token=new)
    assert _dial(response) is not None and Call.objects.filter(sid=params["CallSid"]).exists()


def test_a_forged_signature_is_403_and_writes_nothing(client, workspace, member_user, called,
                                                      django_assert_max_num_queries):
    before = Call.objects.count()
    with django_assert_max_num_queries(REFUSED_REQUEST_QUERIES):
        response, params = _post(client, workspace, called, member_user, token=secrets.token_hex(16))
    assert response.status_code == 403
    params["CallSid"] = "CA" + secrets.token_hex(16)
    missing = signed_post(client, outbound_path(workspace), params, called.auth_token, signature="")
    assert missing.status_code == 403
    assert Call.objects.count() == before


def test_a_signature_over_other_params_is_403(client, workspace, member_user, called):
    params = outbound_params(called, member_user)
    signature = RequestValidator(called.auth_token).compute_signature(public_url(outbound_path(workspace)), params)
    tampered = {**params, "To": "+19005550100"}
    response = signed_post(client, outbound_path(workspace), tampered, called.auth_token, signature=signature)
    assert response.status_code == 403 and not Call.objects.filter(sid=params["CallSid"]).exists()


def test_another_account_sid_is_403_and_writes_nothing(client, workspace, member_user, called,
                                                       django_assert_max_num_queries):
    with django_assert_max_num_queries(REFUSED_REQUEST_QUERIES):
        response, params = _post(client, workspace, called, member_user, AccountSid="AC" + "0" * 32)
    assert response.status_code == 403
    assert not Call.objects.filter(sid=params["CallSid"]).exists()


def test_a_member_removed_after_a_first_call_is_refused(client, workspace, member_user, called,
                                                        django_assert_max_num_queries):
    Membership.objects.filter(user=member_user, workspace=workspace).delete()
    with django_assert_max_num_queries(CALL_QUERIES):
        response, params = _post(client, workspace, called, member_user)
    assert _said(response) == dialer_services.REFUSE_NOT_MEMBER
    call = Call.objects.get(sid=params["CallSid"])
    assert call.status == Call.Status.REFUSED and call.user_id is None and call.ended_at is not None


def test_a_verified_caller_id_removed_is_refused_at_once(client, workspace, member_user, called):
    response, _ = _post(client, workspace, called, member_user, CallerId="+13105550111")
    assert _dial(response).get("callerId") == "+13105550111"
    caller_id = CallerId.objects.get(workspace=workspace, phone_number="+13105550111")
    telephony_services.caller_id_remove(workspace=workspace, caller_id_id=caller_id.pk)
    response, params = _post(client, workspace, called, member_user, CallerId="+13105550111")
    assert _said(response) == dialer_services.REFUSE_CALLER_ID
    assert Call.objects.get(sid=params["CallSid"]).status == Call.Status.REFUSED


def test_a_caller_id_removed_after_a_first_call_is_refused(client, workspace, member_user, called):
    CallerId.objects.filter(workspace=workspace).delete()
    response, params = _post(client, workspace, called, member_user)
    assert _said(response) == dialer_services.REFUSE_CALLER_ID
    assert Call.objects.get(sid=params["CallSid"]).status == Call.Status.REFUSED


def test_a_country_change_applies_to_local_numbers_at_once(client, workspace, member_user, called):
    workspace.default_country = "GB"
    workspace.save(update_fields=["default_country"])
    response, params = _post(client, workspace, called, member_user, To="020 7946 0018")
    assert _dial(response).find("Number").text == "+442079460018"
    assert Call.objects.get(sid=params["CallSid"]).to_number == "+442079460018"


def test_local_presence_switched_on_applies_to_the_next_call(client, workspace, member_user):
    connection = ready_workspace(workspace, numbers=("+15125550100", "+14155550100"))
    response, _ = _post(client, workspace, connection, member_user, CallerId="auto", To="+14155550142")
    assert _dial(response).get("callerId") == "+15125550100"  # the default
    telephony_services.local_presence_set(workspace=workspace, enabled=True)
    response, _ = _post(client, workspace, connection, member_user, CallerId="auto", To="+14155550142")
    assert _dial(response).get("callerId") == "+14155550100"  # the number in the callee's area


def test_a_retried_call_sid_gets_the_same_answer_and_one_row(client, workspace, member_user, called,
                                                             django_assert_max_num_queries):
    params = outbound_params(called, member_user)
    first = signed_post(client, outbound_path(workspace), params, called.auth_token)
    with django_assert_max_num_queries(RETRY_QUERIES):
        second = signed_post(client, outbound_path(workspace), params, called.auth_token)
    assert _dial(first) is not None and first.content == second.content
    assert Call.objects.filter(sid=params["CallSid"]).count() == 1


def test_a_retry_after_the_member_was_removed_keeps_the_first_answer(client, workspace, member_user, called):
    """The call was placed: Twilio's retry of the same CallSid gets the same <Dial>, not a second decision."""
    params = outbound_params(called, member_user)
    first = signed_post(client, outbound_path(workspace), params, called.auth_token)
    Membership.objects.filter(user=member_user).delete()
    assert signed_post(client, outbound_path(workspace), params, called.auth_token).content == first.content
    assert Call.objects.filter(sid=params["CallSid"]).count() == 1


def test_a_refused_call_retried_stays_refused(client, workspace, member_user, called):
    params = outbound_params(called, member_user, CallerId="+19995550100")
    first = signed_post(client, outbound_path(workspace), params, called.auth_token)
    assert _said(first) == dialer_services.REFUSE_CALLER_ID
    # Even once the caller ID has become usable: the retry is the same call, refused once.
    CallerId.objects.create(workspace=workspace, phone_number="+19995550100", kind=CallerId.Kind.VERIFIED,
                            verified_at=timezone.now(), country="US")
    again = signed_post(client, outbound_path(workspace), params, called.auth_token)
    assert again.content == first.content
    call = Call.objects.get(sid=params["CallSid"])
    assert call.status == Call.Status.REFUSED and Call.objects.filter(sid=params["CallSid"]).count() == 1


def test_a_call_sid_of_another_workspace_is_refused_and_left_alone(client, workspace, member_user, other_workspace,
                                                                   other_admin_user, called):
    other = ready_workspace(other_workspace, numbers=("+15125550199",))
    params = outbound_params(other, other_admin_user, CallerId="+15125550199")
    assert _dial(signed_post(client, outbound_path(other_workspace), params, other.auth_token)) is not None
    ours = {**outbound_params(called, member_user), "CallSid": params["CallSid"]}
    response = signed_post(client, outbound_path(workspace), ours, called.auth_token)
    assert _said(response) == dialer_services.REFUSE_NOT_MEMBER
    call = Call.objects.get(sid=params["CallSid"])
    assert call.workspace_id == other_workspace.pk and call.status == Call.Status.INITIATED
