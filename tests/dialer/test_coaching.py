"""Coaching on reps' dialer calls (dialer/coaching.py): who may, the move into a conference, the supervisor's
TwiML, mode changes through the gateway, the conference's callbacks, the rep's view, the audit log.
The gateway is faked here; the sandbox carries the real thing in test_coaching_browser.py."""
import secrets
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from dialer.coaching import live_calls as coaching_live_calls
from dialer.models import Call, CallCoaching, CallLeg
from telephony import errors
from tests.dialer.voice_fixtures import ready_workspace, signed_post
from workspaces.models import AuditEntry

pytestmark = pytest.mark.django_db


def sid() -> str:
    return "CA" + secrets.token_hex(16)


@pytest.fixture
def gateway(monkeypatch):
    sent = []
    monkeypatch.setattr("telephony.twilio_gateway.call_update", lambda **kw: sent.append(("call_update", kw)))
    monkeypatch.setattr("telephony.twilio_gateway.conference_participant_update",
                        lambda **kw: sent.append(("participant_update", kw)))
    return sent


@pytest.fixture
def live_call(workspace, member_user):
    connection = ready_workspace(workspace)
    call = Call.objects.create(workspace=workspace, sid=sid(), direction=Call.Direction.OUTBOUND, user=member_user,
                               to_number="+15125550123", status=Call.Status.IN_PROGRESS, answered_at=timezone.now())
    leg = CallLeg.objects.create(call=call, sid=sid(), kind=CallLeg.Kind.NUMBER, to_number="+15125550123",
                                 status=Call.Status.IN_PROGRESS)
    return connection, call, leg


def test_members_cannot_see_live_calls_or_coach(member_client, live_call, gateway):
    _, call, _ = live_call
    assert member_client.get("/calls/live/").status_code == 403
    assert member_client.post(f"/calls/live/{call.pk}/coach", {"mode": "listen"}).status_code == 403
    assert gateway == [] and not CallCoaching.objects.exists()


def test_listening_moves_the_call_into_its_conference_and_the_supervisor_joins_muted_as_a_coach(
        admin_client, admin_user, member_user, member_client, live_call, gateway, client, workspace):
    connection, call, leg = live_call
    page = admin_client.get("/calls/live/")
    assert page.status_code == 200 and call.to_number in page.content.decode()

    response = admin_client.post(f"/calls/live/{call.pk}/coach", {"mode": "listen"})
    assert response.status_code == 200, response.content
    coaching = CallCoaching.objects.get(pk=response.json()["id"])
    call.refresh_from_db()
    assert call.conference_name == f"dialer-{call.sid}" and coaching.coached_sid == call.sid
    (op, kwargs), = gateway  # the person's leg goes first; the rep's follows from the Dial action
    assert op == "call_update" and kwargs["call_sid"] == leg.sid
    conference = ET.fromstring(kwargs["twiml"]).find("Dial/Conference")
    assert conference.text == call.conference_name and conference.get("endConferenceOnExit") == "true"
    entry = AuditEntry.objects.get(workspace=workspace, actor=admin_user)
    assert (entry.action, entry.details["mode"], entry.object_id) == (AuditEntry.Action.CALL_LISTENED, "listen",
                                                                      str(call.pk))

    # The parent's <Dial> ended (its child was redirected): it joins the conference, the call goes on.
    dial_done = signed_post(client, f"/v1/voice/dial-done/{workspace.pk}",
                            {"CallSid": call.sid, "DialCallStatus": "completed", "DialCallDuration": "12"},
                            connection.auth_token)
    assert ET.fromstring(dial_done.content).find("Dial/Conference").text == call.conference_name
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.ended_at is None

    # The supervisor's browser call: muted, coaching the rep; nobody else can use the id.
    params = {"AccountSid": connection.account_sid, "CallSid": sid(), "From": f"client:ws{workspace.pk}-u{admin_user.pk}",
              "Coaching": str(coaching.pk)}
    joined = ET.fromstring(signed_post(client, f"/v1/voice/outbound/{workspace.pk}", params,
                                       connection.auth_token).content).find("Dial/Conference")
    assert (joined.get("coach"), joined.get("muted"), joined.get("startConferenceOnEnter")) == (call.sid, "true",
                                                                                              "false")
    signed_post(client, f"/v1/voice/status/{workspace.pk}",  # its own status callback
                {"AccountSid": connection.account_sid, "CallSid": params["CallSid"], "CallStatus": "in-progress",
                 "From": params["From"], "To": ""}, connection.auth_token)
    assert list(coaching_live_calls(workspace=workspace)) == [call]  # not a rep's call to coach
    stranger = {**params, "CallSid": sid(), "From": f"client:ws{workspace.pk}-u{member_user.pk}"}
    refused = ET.fromstring(signed_post(client, f"/v1/voice/outbound/{workspace.pk}", stranger,
                                        connection.auth_token).content)
    assert refused.find("Dial") is None and refused.find("Say") is not None

    # Switching before Twilio told us the conference's SID: refused with a clear message.
    early = admin_client.post(f"/calls/coaching/{coaching.pk}/mode", {"mode": "whisper"})
    assert early.status_code == 400 and "Still joining" in early.json()["message"]

    conference_sid = "CF" + secrets.token_hex(16)
    for event in ("participant-join",):
        signed_post(client, f"/v1/voice/conference/{workspace.pk}",
                    {"AccountSid": connection.account_sid, "ConferenceSid": conference_sid,
                     "FriendlyName": call.conference_name, "CallSid": params["CallSid"], "StatusCallbackEvent": event},
                    connection.auth_token)
    assert member_client.get("/calls/coaching/mine").json()["coaching"] == [
        {"supervisor": "alice", "mode": "listen", "label": "listening"}]

    whisper = admin_client.post(f"/calls/coaching/{coaching.pk}/mode", {"mode": "whisper"})
    assert whisper.status_code == 200, whisper.content
    op, kwargs = gateway[-1]
    assert op == "participant_update"
    assert (kwargs["conference_sid"], kwargs["call_sid"], kwargs["muted"], kwargs["coaching"],
            kwargs["call_sid_to_coach"]) == (conference_sid, params["CallSid"], False, True, call.sid)
    assert member_client.get("/calls/coaching/mine").json()["coaching"][0]["mode"] == "whisper"
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CALL_INTERVENED, details__mode="whisper").exists()

    admin_client.post(f"/calls/coaching/{coaching.pk}/mode", {"mode": "barge"})
    assert gateway[-1][1]["coaching"] is False and gateway[-1][1]["muted"] is False

    signed_post(client, f"/v1/voice/conference/{workspace.pk}",
                {"AccountSid": connection.account_sid, "ConferenceSid": conference_sid,
                 "FriendlyName": call.conference_name, "CallSid": params["CallSid"],
                 "StatusCallbackEvent": "participant-leave"}, connection.auth_token)
    assert member_client.get("/calls/coaching/mine").json()["coaching"] == []


def test_a_rep_cannot_coach_and_a_failed_move_leaves_the_call_as_it_was(admin_client, admin_user, live_call,
                                                                       monkeypatch, workspace):
    _, call, _ = live_call
    Call.objects.filter(pk=call.pk).update(user=admin_user)
    own = admin_client.post(f"/calls/live/{call.pk}/coach", {"mode": "whisper"})
    assert own.status_code == 400 and own.json()["message"] == "That is your own call."

    Call.objects.filter(pk=call.pk).update(user=None)

    def unreachable(**kwargs):
        raise errors.TwilioTransientError("Twilio did not answer")

    monkeypatch.setattr("telephony.twilio_gateway.call_update", unreachable)
    failed = admin_client.post(f"/calls/live/{call.pk}/coach", {"mode": "listen"})
    assert failed.status_code == 400 and "could not move the call" in failed.json()["message"]
    call.refresh_from_db()
    assert call.conference_name == "" and CallCoaching.objects.get().ended_at is not None


def test_on_an_inbound_call_the_reps_browser_leg_moves_and_is_the_one_coached(admin_client, member_user, workspace,
                                                                              gateway, client):
    connection = ready_workspace(workspace)
    call = Call.objects.create(workspace=workspace, sid=sid(), direction=Call.Direction.INBOUND, user=member_user,
                               from_number="+13105550111", status=Call.Status.IN_PROGRESS, answered_at=timezone.now())
    rep_leg = CallLeg.objects.create(call=call, sid=sid(), kind=CallLeg.Kind.CLIENT, user=member_user,
                                     to_number=f"client:ws{workspace.pk}-u{member_user.pk}",
                                     status=Call.Status.IN_PROGRESS)
    response = admin_client.post(f"/calls/live/{call.pk}/coach", {"mode": "whisper"})
    assert response.status_code == 200, response.content
    assert CallCoaching.objects.get().coached_sid == rep_leg.sid  # the rep is the dialled leg here
    (op, kwargs), = gateway
    assert kwargs["call_sid"] == rep_leg.sid
    dial_done = signed_post(client, f"/v1/voice/dial-done/{workspace.pk}",
                            {"CallSid": call.sid, "DialCallStatus": "completed", "DialCallDuration": "30"},
                            connection.auth_token)
    root = ET.fromstring(dial_done.content)
    assert root.find("Dial/Conference").text == f"dialer-{call.sid}" and root.find("Record") is None  # no voicemail


def test_the_supervisors_own_call_is_a_coaching_call_kept_out_of_the_log_analytics_and_export(
        admin_client, admin_user, member_user, live_call, gateway, client, workspace):
    from analytics.selectors import Period, dialer_stats

    connection, call, _ = live_call
    coaching = CallCoaching.objects.get(pk=admin_client.post(f"/calls/live/{call.pk}/coach",
                                                             {"mode": "whisper"}).json()["id"])
    supervisor_sid = sid()
    frm = f"client:ws{workspace.pk}-u{admin_user.pk}"
    # Its status callback first (Twilio does not promise the order), then the TwiML app's voice URL.
    signed_post(client, f"/v1/voice/status/{workspace.pk}", {"AccountSid": connection.account_sid,
                "CallSid": supervisor_sid, "CallStatus": "initiated", "From": frm, "To": ""}, connection.auth_token)
    signed_post(client, f"/v1/voice/outbound/{workspace.pk}", {"AccountSid": connection.account_sid,
                "CallSid": supervisor_sid, "From": frm, "Coaching": str(coaching.pk)}, connection.auth_token)
    signed_post(client, f"/v1/voice/status/{workspace.pk}", {"AccountSid": connection.account_sid,
                "CallSid": supervisor_sid, "CallStatus": "in-progress", "From": frm, "To": ""}, connection.auth_token)
    own = Call.objects.get(sid=supervisor_sid)
    assert own.coached_call == call and own.user == admin_user

    log = admin_client.get("/calls/").content.decode()
    assert call.sid in log and supervisor_sid not in log
    export = admin_client.get("/calls/export.csv").content.decode()
    assert call.sid in export and supervisor_sid not in export
    today = timezone.now().date()
    reps = dialer_stats(workspace=workspace, period=Period(since=today, until=today))
    assert [r.user_id for r in reps] == [member_user.pk]

    # The coached call's page says who listened and how; the coaching call's page points back to it.
    signed_post(client, f"/v1/voice/conference/{workspace.pk}",
                {"AccountSid": connection.account_sid, "ConferenceSid": "CF" + secrets.token_hex(16),
                 "FriendlyName": call.conference_name, "CallSid": supervisor_sid,
                 "StatusCallbackEvent": "participant-join"}, connection.auth_token)
    detail = admin_client.get(f"/calls/{call.pk}/").content.decode()
    assert 'data-testid="call-coachings"' in detail and "alice" in detail and "whispering" in detail
    own_page = admin_client.get(f"/calls/{own.pk}/").content.decode()
    assert 'data-testid="coached-call"' in own_page and f"/calls/{call.pk}/" in own_page
