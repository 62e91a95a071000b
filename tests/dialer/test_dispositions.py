"""Dispositions and notes on dialer calls, the workspace's list (Settings → Dialer), voicemail drop through the
gateway (the callee's leg redirected to <Play> then <Hangup>), its signed audio URL, the call log and its export."""
import pytest

from dialer import dispositions
from dialer.models import Call, CallLeg, Disposition
from tests.dialer.settings_helpers import connect_byok
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SID = "CA" + "a" * 32


@pytest.fixture
def rep(workspace):
    user = UserFactory(username="rita")
    MembershipFactory(workspace=workspace, user=user)
    return user


def _call(workspace, user, sid=SID, status=Call.Status.IN_PROGRESS):
    return Call.objects.create(workspace=workspace, sid=sid, direction=Call.Direction.OUTBOUND, user=user,
                               to_number="+15125550188", caller_id="+15125550100", status=status)


def test_the_workspace_list_is_seeded_once_with_the_usual_dispositions(workspace):
    names = [d.name for d in dispositions.dispositions_for(workspace=workspace)]
    assert names == ["Connected", "No answer", "Left voicemail", "Busy", "Wrong number", "Not interested",
                     "Meeting booked"]
    dispositions.dispositions_for(workspace=workspace)
    assert Disposition.objects.filter(workspace=workspace).count() == 7


def test_a_rep_sets_a_disposition_and_notes_and_the_log_detail_and_export_show_them(client, workspace, rep):
    call = _call(workspace, rep, status=Call.Status.COMPLETED)
    connected = dispositions.disposition_by_key(workspace=workspace, key="connected")
    client.force_login(rep)

    response = client.post(f"/v1/voice/calls/{SID}/disposition", {"disposition": connected.pk, "notes": "Call back"})

    assert response.status_code == 200, response.content
    call.refresh_from_db()
    assert (call.disposition, call.notes) == (connected, "Call back")
    assert "Call back" in client.get("/calls/").content.decode()
    detail = client.get(f"/calls/{call.pk}/").content.decode()
    assert "Connected" in detail and "Call back" in detail
    export = client.get("/calls/export.csv").content.decode()
    assert "Connected,Call back" in export and export.startswith("started_at,")


def test_another_member_cannot_set_a_reps_disposition(client, workspace, rep):
    _call(workspace, rep)
    other = UserFactory(username="bob")
    MembershipFactory(workspace=workspace, user=other)
    client.force_login(other)
    response = client.post(f"/v1/voice/calls/{SID}/disposition", {"disposition": "", "notes": "x"})
    assert response.status_code == 400 and "Only the rep" in response.json()["message"]


def test_admins_edit_the_list_and_upload_the_voicemail_message(client, workspace, admin_user):
    client.force_login(admin_user)
    page = client.get("/settings/dialer/dispositions/")
    assert page.status_code == 200 and "Meeting booked" in page.content.decode()

    client.post("/settings/dialer/dispositions/", {"action": "add", "name": "Call back later", "outcome": "no_answer"})
    assert Disposition.objects.get(workspace=workspace, name="Call back later").outcome == "no_answer"
    duplicate = client.post("/settings/dialer/dispositions/", {"action": "add", "name": "busy", "outcome": "busy"})
    assert duplicate.status_code == 400 and "already a disposition" in duplicate.content.decode()

    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = client.post("/settings/dialer/dispositions/", {
        "action": "message", "audio": SimpleUploadedFile("m.ogg", b"OggS", content_type="audio/ogg")})
    assert bad.status_code == 400 and "MP3 or WAV" in bad.content.decode()
    client.post("/settings/dialer/dispositions/", {
        "action": "message", "audio": SimpleUploadedFile("m.mp3", b"ID3" + b"\0" * 500, content_type="audio/mpeg")})
    assert workspace.voicemail_drop.file_name == "m.mp3"


def test_voicemail_drop_redirects_the_callees_leg_to_the_message_and_sets_left_voicemail(
        client, workspace, rep, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, account_sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    call = _call(workspace, rep)
    client.force_login(rep)
    refused = client.post(f"/v1/voice/calls/{SID}/voicemail-drop")
    assert refused.status_code == 409 and "voicemail message first" in refused.json()["message"]

    message = dispositions.voicemail_message_save(workspace=workspace, data=b"ID3" + b"\0" * 500,
                                                  content_type="audio/mpeg", file_name="m.mp3")
    refused = client.post(f"/v1/voice/calls/{SID}/voicemail-drop")
    assert refused.status_code == 409 and "Nobody has answered" in refused.json()["message"]

    leg_sid = twilio_sandbox.add_call(account_sid, parent_call_sid=SID, to="+15125550188")
    CallLeg.objects.create(call=call, sid=leg_sid, kind=CallLeg.Kind.NUMBER, to_number="+15125550188",
                           status=Call.Status.IN_PROGRESS)
    response = client.post(f"/v1/voice/calls/{SID}/voicemail-drop")

    assert response.status_code == 200, response.content
    twiml = twilio_sandbox.call_twiml(account_sid, leg_sid)
    url = dispositions.voicemail_message_url(message=message)
    assert twiml == f'<?xml version="1.0" encoding="UTF-8"?><Response><Play>{url.replace("&", "&amp;")}</Play><Hangup /></Response>'
    call.refresh_from_db()
    assert call.disposition.key == "left_voicemail" and call.voicemail_dropped_at is not None
    # Twilio fetches the message from the signed URL without a session; a forged token is a 404.
    client.logout()
    path = url.split("://", 1)[1].split("/", 1)[1]
    audio = client.get("/" + path)
    assert audio.status_code == 200 and audio.content.startswith(b"ID3") and audio["Content-Type"] == "audio/mpeg"
    assert client.get("/voicemail-drop/forged:token").status_code == 404
