"""Twilio voice webhooks: TwiML (parsed as XML), signatures, caller-ID checks, inbound routing, voicemail."""
import xml.etree.ElementTree as ET

import pytest

from dialer import tokens as voice
from dialer.models import Call, Voicemail
from tests.dialer.voice_fixtures import call_sid, ready_workspace, signed_post

pytestmark = pytest.mark.django_db


def outbound_path(workspace):
    return f"/v1/voice/outbound/{workspace.pk}"


def outbound_params(connection, user, **extra):
    params = {"AccountSid": connection.account_sid, "CallSid": call_sid(), "ApplicationSid": connection.twiml_app_sid,
              "From": f"client:ws{connection.workspace_id}-u{user.pk}", "To": "(415) 555-0142",
              "CallerId": "+15125550100", "Direction": "inbound", "CallStatus": "ringing"}
    params.update(extra)
    return params


def xml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)


# --- outbound -------------------------------------------------------------------------------------------------


def test_outbound_dials_the_normalised_number_with_the_caller_id(client, workspace, member_user):
    connection = ready_workspace(workspace)
    params = outbound_params(connection, member_user)
    root = xml(signed_post(client, outbound_path(workspace), params, connection.auth_token))
    assert root.tag == "Response"
    dial = root.find("Dial")
    assert dial.get("callerId") == "+15125550100"
    assert dial.get("action") == f"https://calls.example.test/v1/voice/dial-done/{workspace.pk}"
    number = dial.find("Number")
    assert number.text == "+14155550142"
    assert number.get("statusCallback") == f"https://calls.example.test/v1/voice/leg-status/{workspace.pk}"
    assert "answered" in number.get("statusCallbackEvent")
    call = Call.objects.get(sid=params["CallSid"])
    assert (call.workspace, call.user, call.direction, call.status) == (workspace, member_user, "outbound", "initiated")
    assert (call.to_number, call.caller_id, call.from_number) == ("+14155550142", "+15125550100", "+15125550100")


def test_outbound_accepts_a_verified_caller_id(client, workspace, member_user):
    connection = ready_workspace(workspace, verified=("+13105550111",))
    root = xml(signed_post(client, outbound_path(workspace),
                           outbound_params(connection, member_user, CallerId="+13105550111"), connection.auth_token))
    assert root.find("Dial").get("callerId") == "+13105550111"


def test_outbound_refuses_a_caller_id_the_workspace_does_not_own(client, workspace, member_user, other_workspace,
                                                                caplog):
    connection = ready_workspace(workspace)
    ready_workspace(other_workspace, numbers=("+12125550177",))  # someone else's number
    params = outbound_params(connection, member_user, CallerId="+12125550177")
    with caplog.at_level("WARNING", logger="telephony.services"):
        root = xml(signed_post(client, outbound_path(workspace), params, connection.auth_token))
    assert root.find("Dial") is None
    assert "not one of this workspace's verified numbers" in root.find("Say").text
    assert root.find("Hangup") is not None
    call = Call.objects.get(sid=params["CallSid"])
    assert call.status == Call.Status.REFUSED and call.refusal_reason == Call.Refusal.CALLER_ID_NOT_USABLE
    assert any(getattr(r, "reason", "") == call.refusal_reason for r in caplog.records)


def test_outbound_refuses_an_identity_of_another_workspace(client, workspace, other_workspace, other_admin_user,
                                                          member_user):
    connection = ready_workspace(workspace)
    params = outbound_params(connection, member_user, From=f"client:ws{other_workspace.pk}-u{other_admin_user.pk}")
    root = xml(signed_post(client, outbound_path(workspace), params, connection.auth_token))
    assert root.find("Dial") is None and root.find("Say") is not None
    # Right workspace id but not a member:
    params = outbound_params(connection, member_user, From=f"client:ws{workspace.pk}-u{other_admin_user.pk}")
    root = xml(signed_post(client, outbound_path(workspace), params, connection.auth_token))
    assert root.find("Dial") is None
    assert Call.objects.get(sid=params["CallSid"]).user is None


def test_outbound_refuses_an_invalid_number(client, workspace, member_user):
    connection = ready_workspace(workspace)
    root = xml(signed_post(client, outbound_path(workspace), outbound_params(connection, member_user, To="12"),
                           connection.auth_token))
    assert root.find("Dial") is None and "not a valid phone number" in root.find("Say").text


def test_outbound_auto_uses_local_presence(client, workspace, member_user):
    connection = ready_workspace(workspace, numbers=("+15125550100", "+14155550100"), local_presence=True)
    root = xml(signed_post(client, outbound_path(workspace),
                           outbound_params(connection, member_user, CallerId="auto", To="+14155550199"),
                           connection.auth_token))
    assert root.find("Dial").get("callerId") == "+14155550100"
    root = xml(signed_post(client, outbound_path(workspace),
                           outbound_params(connection, member_user, CallerId="auto", To="+17185550199"),
                           connection.auth_token))
    assert root.find("Dial").get("callerId") == "+15125550100"  # the default


def test_outbound_is_idempotent_per_call_sid(client, workspace, member_user):
    connection = ready_workspace(workspace)
    params = outbound_params(connection, member_user)
    first = signed_post(client, outbound_path(workspace), params, connection.auth_token).content
    second = signed_post(client, outbound_path(workspace), params, connection.auth_token).content
    assert first == second
    assert Call.objects.filter(sid=params["CallSid"]).count() == 1


def test_outbound_accepts_a_caller_id_in_local_format(client, workspace, member_user):
    """Not E.164: checked after parsing with the workspace's country (its own query), same answer."""
    connection = ready_workspace(workspace)
    root = xml(signed_post(client, outbound_path(workspace),
                           outbound_params(connection, member_user, CallerId="(512) 555-0100"), connection.auth_token))
    assert root.find("Dial").get("callerId") == "+15125550100"


def test_outbound_refuses_an_unverified_external_caller_id(client, workspace, member_user):
    from telephony.models import CallerId

    connection = ready_workspace(workspace)
    CallerId.objects.create(workspace=workspace, phone_number="+13105550112", kind=CallerId.Kind.VERIFIED,
                            verified_at=None)  # validation still pending
    root = xml(signed_post(client, outbound_path(workspace),
                           outbound_params(connection, member_user, CallerId="+13105550112"), connection.auth_token))
    assert root.find("Dial") is None and root.find("Say") is not None


def test_outbound_refuses_a_former_member(client, workspace, member_user):
    from workspaces.models import Membership

    connection = ready_workspace(workspace)
    Membership.objects.filter(user=member_user).delete()
    root = xml(signed_post(client, outbound_path(workspace), outbound_params(connection, member_user),
                           connection.auth_token))
    assert root.find("Dial") is None and "not signed in" in root.find("Say").text


def test_outbound_query_count(client, workspace, member_user, django_assert_num_queries):
    """Connection, member + caller ID (one query), the do-not-call list, the Call insert (in a savepoint here;
    autocommit in production)."""
    connection = ready_workspace(workspace)
    with django_assert_num_queries(6) as queries:
        response = signed_post(client, outbound_path(workspace), outbound_params(connection, member_user),
                               connection.auth_token)
    assert b"<Dial" in response.content
    # The member check reads one membership row: no joins for Membership's default ordering.
    member_query = next(q["sql"] for q in queries.captured_queries if 'FROM "workspaces_membership"' in q["sql"])
    assert '"auth_user"' not in member_query and '"workspaces_workspace"' not in member_query


# --- signatures -----------------------------------------------------------------------------------------------

WEBHOOKS = ["outbound", "inbound", "status", "leg-status", "dial-done", "voicemail-done", "recording"]


@pytest.mark.parametrize("hook", WEBHOOKS)
def test_missing_signature_is_403(client, workspace, member_user, hook):
    connection = ready_workspace(workspace)
    response = signed_post(client, f"/v1/voice/{hook}/{workspace.pk}", outbound_params(connection, member_user),
                           connection.auth_token, signature="")
    assert response.status_code == 403
    assert not Call.objects.exists()


@pytest.mark.parametrize("hook", WEBHOOKS)
def test_forged_signature_is_403(client, workspace, member_user, hook):
    connection = ready_workspace(workspace)
    params = outbound_params(connection, member_user)
    response = signed_post(client, f"/v1/voice/{hook}/{workspace.pk}", params, "not-the-auth-token")
    assert response.status_code == 403
    assert not Call.objects.exists()


def test_signature_of_another_workspace_is_403(client, workspace, other_workspace, member_user):
    """Signed with workspace B's token but sent to workspace A's URL (and vice versa)."""
    connection = ready_workspace(workspace)
    other = ready_workspace(other_workspace, numbers=("+15125550199",))
    params = outbound_params(connection, member_user)
    assert signed_post(client, outbound_path(workspace), params, other.auth_token).status_code == 403
    # Correctly signed for B's URL, but the AccountSid is A's.
    assert signed_post(client, outbound_path(other_workspace), params, other.auth_token).status_code == 403
    assert not Call.objects.exists()


def test_unknown_workspace_is_404(client, workspace, member_user):
    connection = ready_workspace(workspace)
    response = signed_post(client, "/v1/voice/outbound/999999", outbound_params(connection, member_user),
                           connection.auth_token)
    assert response.status_code == 404


def test_get_is_refused(client, workspace):
    connection = ready_workspace(workspace)
    from twilio.request_validator import RequestValidator

    path = outbound_path(workspace)
    sig = RequestValidator(connection.auth_token).compute_signature("https://calls.example.test" + path, {})
    assert client.get(path, HTTP_X_TWILIO_SIGNATURE=sig).status_code == 405


# --- status callbacks -----------------------------------------------------------------------------------------


def _start_outbound(client, connection, user):
    params = outbound_params(connection, user, CallerId="auto")
    signed_post(client, outbound_path(connection.workspace), params, connection.auth_token)
    return params["CallSid"]


def _leg(client, connection, parent, leg, status, **extra):
    params = {"AccountSid": connection.account_sid, "CallSid": leg, "ParentCallSid": parent, "CallStatus": status,
              "To": "+14155550142", "From": "+15125550100", **extra}
    return signed_post(client, f"/v1/voice/leg-status/{connection.workspace_id}", params, connection.auth_token)


def _status(client, connection, sid, status, **extra):
    params = {"AccountSid": connection.account_sid, "CallSid": sid, "CallStatus": status,
              "From": "client:x", "To": "", **extra}
    return signed_post(client, f"/v1/voice/status/{connection.workspace_id}", params, connection.auth_token)


def _dial_done(client, connection, sid, status, duration=None):
    params = {"AccountSid": connection.account_sid, "CallSid": sid, "DialCallStatus": status}
    if duration is not None:
        params["DialCallDuration"] = str(duration)
    return signed_post(client, f"/v1/voice/dial-done/{connection.workspace_id}", params, connection.auth_token)


def test_call_lifecycle_and_retries(client, workspace, member_user):
    connection = ready_workspace(workspace)
    sid = _start_outbound(client, connection, member_user)
    leg = call_sid()
    assert _leg(client, connection, sid, leg, "ringing", Timestamp="Mon, 23 Nov 2026 01:00:00 +0000").status_code == 204
    assert Call.objects.get(sid=sid).status == "ringing"
    _leg(client, connection, sid, leg, "in-progress", Timestamp="Mon, 23 Nov 2026 01:00:05 +0000")
    _leg(client, connection, sid, leg, "in-progress", Timestamp="Mon, 23 Nov 2026 01:00:09 +0000")  # retried
    call = Call.objects.get(sid=sid)
    assert call.status == "in-progress" and call.answered_at.second == 5
    _leg(client, connection, sid, leg, "completed", CallDuration="61", Timestamp="Mon, 23 Nov 2026 01:01:06 +0000")
    root = xml(_dial_done(client, connection, sid, "completed", 61))
    assert root.find("Hangup") is not None
    _status(client, connection, sid, "completed", CallDuration="65", Timestamp="Mon, 23 Nov 2026 01:01:07 +0000")
    _status(client, connection, sid, "completed", CallDuration="65", Timestamp="Mon, 23 Nov 2026 01:01:07 +0000")
    call = Call.objects.get(sid=sid)
    assert (call.status, call.duration) == ("completed", 61)
    assert call.ended_at is not None and call.answered_at.second == 5
    assert call.legs.count() == 1
    leg_row = call.legs.get()
    assert (leg_row.status, leg_row.duration, leg_row.kind) == ("completed", 61, "number")


def test_out_of_order_status_never_moves_back(client, workspace, member_user):
    connection = ready_workspace(workspace)
    sid = _start_outbound(client, connection, member_user)
    _dial_done(client, connection, sid, "no-answer", 0)
    leg = call_sid()
    _leg(client, connection, sid, leg, "completed")
    _leg(client, connection, sid, leg, "ringing")  # late
    _status(client, connection, sid, "ringing")  # late
    _status(client, connection, sid, "completed", CallDuration="30")
    call = Call.objects.get(sid=sid)
    assert call.status == "no-answer"
    assert call.legs.get().status == "completed"


def test_rep_hangs_up_while_ringing_is_canceled(client, workspace, member_user):
    connection = ready_workspace(workspace)
    sid = _start_outbound(client, connection, member_user)
    _leg(client, connection, sid, call_sid(), "ringing")
    _status(client, connection, sid, "completed", CallDuration="9")  # no Dial action when the caller leaves
    call = Call.objects.get(sid=sid)
    assert (call.status, call.answered_at) == ("canceled", None)
    assert call.ended_at is not None


def test_status_for_an_unknown_call_is_recorded_once(client, workspace, member_user):
    connection = ready_workspace(workspace)
    sid = call_sid()
    _status(client, connection, sid, "completed", CallDuration="12", From=f"client:ws{workspace.pk}-u{member_user.pk}")
    _status(client, connection, sid, "completed", CallDuration="12", From=f"client:ws{workspace.pk}-u{member_user.pk}")
    call = Call.objects.get(sid=sid)
    assert (call.status, call.duration, call.user, call.direction) == ("completed", 12, member_user, "outbound")


def test_leg_of_unknown_call_is_ignored(client, workspace):
    connection = ready_workspace(workspace)
    assert _leg(client, connection, call_sid(), call_sid(), "ringing").status_code == 204
    assert not Call.objects.exists()


def test_status_of_another_workspaces_call_is_not_touched(client, workspace, other_workspace, other_admin_user):
    connection = ready_workspace(workspace)
    other = ready_workspace(other_workspace, numbers=("+15125550199",))
    sid = _start_outbound(client, other, other_admin_user)
    _status(client, connection, sid, "failed")  # correctly signed for workspace A, CallSid of B
    assert Call.objects.get(sid=sid).status == "initiated"
    _dial_done(client, connection, sid, "busy")
    assert Call.objects.get(sid=sid).status == "initiated"


# --- inbound --------------------------------------------------------------------------------------------------


def inbound_params(connection, to="+15125550100"):
    return {"AccountSid": connection.account_sid, "CallSid": call_sid(), "From": "+14155550123", "To": to,
            "Direction": "inbound", "CallStatus": "ringing"}


def test_inbound_rings_online_members(client, workspace, member_user, admin_user):
    connection = ready_workspace(workspace)
    voice.voice_token_issue(connection=connection, user=member_user)  # member is online, admin is not
    params = inbound_params(connection)
    # Through the TwiML app's voice URL (numbers point at the app) and the direct inbound URL.
    for path in (outbound_path(workspace), f"/v1/voice/inbound/{workspace.pk}"):
        params["CallSid"] = call_sid()
        root = xml(signed_post(client, path, params, connection.auth_token))
        dial = root.find("Dial")
        assert [c.text for c in dial.findall("Client")] == [f"ws{workspace.pk}-u{member_user.pk}"]
        assert dial.get("action").endswith(f"/v1/voice/dial-done/{workspace.pk}")
        call = Call.objects.get(sid=params["CallSid"])
        assert call.direction == "inbound" and call.to_number == "+15125550100"


def test_inbound_answered_by_a_member(client, workspace, member_user):
    connection = ready_workspace(workspace)
    voice.voice_token_issue(connection=connection, user=member_user)
    params = inbound_params(connection)
    signed_post(client, outbound_path(workspace), params, connection.auth_token)
    _leg(client, connection, params["CallSid"], call_sid(), "in-progress",
         To=f"client:ws{workspace.pk}-u{member_user.pk}")
    root = xml(_dial_done(client, connection, params["CallSid"], "completed", 40))
    assert root.find("Record") is None
    call = Call.objects.get(sid=params["CallSid"])
    assert (call.user, call.status, call.duration) == (member_user, "completed", 40)
    assert call.legs.get().kind == "client"


def test_inbound_unanswered_goes_to_voicemail(client, workspace, member_user):
    connection = ready_workspace(workspace)
    voice.voice_token_issue(connection=connection, user=member_user)
    params = inbound_params(connection)
    signed_post(client, outbound_path(workspace), params, connection.auth_token)
    root = xml(_dial_done(client, connection, params["CallSid"], "no-answer", 0))
    assert root.find("Say") is not None
    record = root.find("Record")
    assert record.get("recordingStatusCallback") == f"https://calls.example.test/v1/voice/recording/{workspace.pk}"
    assert record.get("action") == f"https://calls.example.test/v1/voice/voicemail-done/{workspace.pk}"
    rec = {"AccountSid": connection.account_sid, "CallSid": params["CallSid"], "RecordingSid": "RE" + "1" * 32,
           "RecordingStatus": "completed", "RecordingDuration": "17"}
    path = f"/v1/voice/recording/{workspace.pk}"
    assert signed_post(client, path, rec, connection.auth_token).status_code == 204
    assert signed_post(client, path, rec, connection.auth_token).status_code == 204  # retried
    assert signed_post(client, path, {**rec, "RecordingStatus": "in-progress"}, connection.auth_token).status_code == 204
    vm = Voicemail.objects.get()
    assert (vm.status, vm.duration, vm.call.sid, vm.workspace) == ("completed", 17, params["CallSid"], workspace)
    assert Call.objects.get(sid=params["CallSid"]).status == "no-answer"
    done = xml(signed_post(client, f"/v1/voice/voicemail-done/{workspace.pk}", {"AccountSid": connection.account_sid,
                                                                                 "CallSid": params["CallSid"]},
                           connection.auth_token))
    assert done.find("Hangup") is not None


def test_inbound_nobody_online_goes_straight_to_voicemail(client, workspace, member_user):
    connection = ready_workspace(workspace)
    params = inbound_params(connection)
    root = xml(signed_post(client, outbound_path(workspace), params, connection.auth_token))
    assert root.find("Dial") is None and root.find("Record") is not None
    assert Call.objects.get(sid=params["CallSid"]).status == "no-answer"


def test_inbound_to_a_number_not_ours_is_refused(client, workspace, other_workspace):
    connection = ready_workspace(workspace)
    ready_workspace(other_workspace, numbers=("+15125550199",))
    root = xml(signed_post(client, outbound_path(workspace), inbound_params(connection, to="+15125550199"),
                           connection.auth_token))
    assert root.find("Dial") is None and root.find("Say") is not None


def test_inbound_caller_hangs_up_no_voicemail(client, workspace, member_user):
    connection = ready_workspace(workspace)
    voice.voice_token_issue(connection=connection, user=member_user)
    params = inbound_params(connection)
    signed_post(client, outbound_path(workspace), params, connection.auth_token)
    root = xml(_dial_done(client, connection, params["CallSid"], "canceled", 0))
    assert root.find("Record") is None
    assert Call.objects.get(sid=params["CallSid"]).status == "canceled"


# --- never a 500 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, service", [
    ("/v1/voice/outbound/{pk}", "call_outbound_start"),
    ("/v1/voice/dial-done/{pk}", "call_dial_finished"),
    ("/v1/voice/status/{pk}", "call_status_apply"),
])
def test_an_internal_error_is_a_spoken_apology_not_a_500(client, workspace, member_user, monkeypatch, caplog, path,
                                                         service):
    from dialer import services as call_services
    from dialer.webhooks import APOLOGY

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(call_services, service, broken)
    connection = ready_workspace(workspace)
    root = xml(signed_post(client, path.format(pk=workspace.pk), outbound_params(connection, member_user),
                           connection.auth_token))
    assert root.find("Say").text == APOLOGY and root.find("Hangup") is not None
    assert any(r.getMessage() == "twilio webhook failed" for r in caplog.records)
    assert connection.auth_token not in caplog.text


def test_a_forged_request_is_still_403_not_an_apology(client, workspace, member_user):
    connection = ready_workspace(workspace)
    response = signed_post(client, outbound_path(workspace), outbound_params(connection, member_user), "f" * 32)
    assert response.status_code == 403
    assert not Call.objects.exists()
