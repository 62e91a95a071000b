"""Recordings: started by the runtime, the signed status callback (retries, out of order), playback through our
server after the workspace check, and deletion past retention at Twilio (the sandbox) and here."""
import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from calls import tasks
from calls.models import CallRecording, CallSession
from devtools.twilio_sandbox.server import MP3_BYTES

from .conftest import TwilioMediaClient, make_call_setup, member_of, run, until_true

pytestmark = pytest.mark.django_db(transaction=True)


def _run_media_call(asgi_server, setup, session, until=None):
    """A call that plays its greeting, waits for `until()` (if given), stops, and has ended on the server."""
    token = setup.token(session)

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            first = await twilio.read_until(lambda m: m.get("event") == "media")
            if until is not None:
                await until_true(until)
            await twilio.stop()
        await until_true(lambda: CallSession.objects.filter(pk=session.pk, ended_at__isnull=False).exists())
        return first

    return run(scenario())


def test_runtime_starts_a_dual_channel_recording_with_a_signed_callback(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    setup.environment.recording_enabled = True
    setup.environment.save(update_fields=["recording_enabled"])
    session = setup.new_session(sandbox=twilio_sandbox)
    first = _run_media_call(asgi_server, setup, session,
                            until=lambda: CallRecording.objects.filter(call_session=session).exists())
    assert first["event"] == "media"  # the greeting plays whatever the recording does
    recordings = twilio_sandbox.state["recordings"][setup.connection.account_sid]
    assert len(recordings) == 1
    (rec,) = recordings.values()
    assert rec["call_sid"] == session.call_sid and rec["channels"] == 2
    assert rec["status_callback_url"] == (
        f"https://calls.example.test/v1/agents/{setup.connector.identifier}/recording-status")
    ours = CallRecording.objects.get(call_session=session)
    assert (ours.recording_sid, ours.status, ours.channels) == (rec["sid"], "in-progress", 2)


def test_no_recording_when_the_environment_does_not_record(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    _run_media_call(asgi_server, setup, session)  # until the call has ended: nothing can start after
    assert not twilio_sandbox.requests_to(r"Recordings")
    assert not CallRecording.objects.exists()


def test_a_recording_that_cannot_start_is_shown_and_the_call_goes_on(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    setup.environment.recording_enabled = True
    setup.environment.save(update_fields=["recording_enabled"])
    session = setup.new_session(sandbox=twilio_sandbox)
    twilio_sandbox.inject_fault(method="POST", path_pattern=r"/Recordings\.json", kind="500", times=None)
    token = setup.token(session)

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            # The recording's start was tried, and failed.
            await until_true(lambda: CallSession.objects.filter(pk=session.pk).exclude(recording_error="").exists())
            await twilio.dtmf("1")  # the call still works: the caller is handed over
            await until_true(lambda: "<Number>+31201234567</Number>" in (twilio_sandbox.call_twiml(
                setup.connection.account_sid, session.call_sid) or ""))

    run(scenario())
    session.refresh_from_db()
    assert "recording could not start" in session.recording_error
    assert "<Number>+31201234567</Number>" in twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert not CallRecording.objects.exists()


# ---------------------------------------------------------------------------- the status callback


def _callback(client, setup, params, *, sign=True, token=None):
    url = f"https://calls.example.test/v1/agents/{setup.connector.identifier}/recording-status"
    headers = {}
    if sign:
        headers["HTTP_X_TWILIO_SIGNATURE"] = RequestValidator(token or setup.connection.auth_token).compute_signature(
            url, params)
    return client.post(url.removeprefix("https://calls.example.test"), params, **headers)


def _params(setup, session, status="completed", duration="42", sid="RE" + "a" * 32):
    return {"AccountSid": setup.connection.account_sid, "CallSid": session.call_sid, "RecordingSid": sid,
            "RecordingStatus": status, "RecordingDuration": duration, "RecordingChannels": "2",
            "RecordingSource": "StartCallRecordingAPI", "RecordingStartTime": "Mon, 23 Nov 2026 01:00:00 +0000",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{setup.connection.account_sid}/Recordings/{sid}"}


def test_callback_stores_the_recording_idempotently_and_in_order(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    client = Client()
    assert _callback(client, setup, _params(setup, session, "in-progress", "-1")).status_code == 204
    rec = CallRecording.objects.get()
    assert (rec.status, rec.duration, rec.channels) == ("in-progress", None, 2)
    completed = _params(setup, session)
    assert _callback(client, setup, completed).status_code == 204
    assert _callback(client, setup, completed).status_code == 204  # Twilio's retry
    rec.refresh_from_db()
    assert (rec.status, rec.duration, rec.channels, rec.source) == ("completed", 42, 2, "StartCallRecordingAPI")
    assert rec.callbacks == 3 and CallRecording.objects.count() == 1
    # A late in-progress event (out of order) does not move it back.
    assert _callback(client, setup, _params(setup, session, "in-progress", "-1")).status_code == 204
    rec.refresh_from_db()
    assert (rec.status, rec.duration) == ("completed", 42)
    assert rec.recording_started_at is not None


def test_out_of_order_completed_first_then_in_progress(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    client = Client()
    _callback(client, setup, _params(setup, session, "completed", "17"))
    _callback(client, setup, _params(setup, session, "in-progress", "-1"))
    rec = CallRecording.objects.get()
    assert (rec.status, rec.duration) == ("completed", 17)


def test_callback_must_be_signed_by_the_workspace_account(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    client = Client()
    assert _callback(client, setup, _params(setup, session), sign=False).status_code == 403
    assert _callback(client, setup, _params(setup, session), token="f" * 32).status_code == 403
    other = make_call_setup(sandbox=twilio_sandbox)
    other_session = other.new_session(sandbox=twilio_sandbox)
    # another workspace's call, signed with our token on our connector's URL: accepted, but stores nothing
    params = _params(setup, other_session)
    params["CallSid"] = other_session.call_sid
    assert _callback(client, setup, params).status_code == 204
    assert not CallRecording.objects.exists()


def test_sandbox_completion_callback_is_accepted(twilio_sandbox, transactional_db, settings):
    """The sandbox's own completion callback (its parameter set and signature) goes through the same view."""
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    rec_sid = twilio_sandbox.add_recording(setup.connection.account_sid, session.call_sid, status="in-progress")
    twilio_sandbox.state["recordings"][setup.connection.account_sid][rec_sid]["status_callback_url"] = None
    twilio_sandbox.complete_recording(setup.connection.account_sid, rec_sid, duration=33, send_callback=False)
    rec = twilio_sandbox.state["recordings"][setup.connection.account_sid][rec_sid]
    params = {"AccountSid": setup.connection.account_sid, "CallSid": session.call_sid, "RecordingSid": rec_sid,
              "RecordingStatus": rec["status"], "RecordingDuration": rec["duration"],
              "RecordingChannels": str(rec["channels"])}
    assert _callback(Client(), setup, params).status_code == 204
    assert CallRecording.objects.get().duration == 33


# ---------------------------------------------------------------------------- playback


def _completed_recording(sandbox, setup, session):
    sid = sandbox.add_recording(setup.connection.account_sid, session.call_sid)
    return CallRecording.objects.create(call_session=session, recording_sid=sid, status="completed", duration=42,
                                        channels=2)


def test_member_plays_the_recording_through_our_server(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    rec = _completed_recording(twilio_sandbox, setup, session)
    client = Client()
    client.force_login(member_of(setup.workspace))
    page = client.get(f"/studio/calls/{session.pk}/")
    audio_url = f"/studio/calls/{session.pk}/recordings/{rec.pk}/audio"
    assert audio_url in page.content.decode()
    assert "api.twilio.com" not in page.content.decode() and rec.recording_sid not in page.content.decode()
    response = client.get(audio_url)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "audio/mpeg"
    assert b"".join(response.streaming_content) == MP3_BYTES
    assert setup.connection.auth_token not in str(response.headers)


def test_playback_is_refused_outside_the_workspace(twilio_sandbox, transactional_db, other_client):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    rec = _completed_recording(twilio_sandbox, setup, session)
    url = f"/studio/calls/{session.pk}/recordings/{rec.pk}/audio"
    assert other_client.get(url).status_code == 404
    assert Client().get(url).status_code == 302  # logged out: to the login page
    # our own call id with another workspace's recording id is not found either
    theirs = make_call_setup(sandbox=twilio_sandbox)
    their_rec = _completed_recording(twilio_sandbox, theirs, theirs.new_session(sandbox=twilio_sandbox))
    client = Client()
    client.force_login(member_of(setup.workspace))
    assert client.get(f"/studio/calls/{session.pk}/recordings/{their_rec.pk}/audio").status_code == 404
    assert not [r for r in twilio_sandbox.requests if r[0] == "GET" and "/Recordings/" in r[1]]


def test_playback_of_a_recording_gone_at_twilio(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    rec = CallRecording.objects.create(call_session=session, recording_sid="RE" + "9" * 32, status="completed")
    client = Client()
    client.force_login(member_of(setup.workspace))
    response = client.get(f"/studio/calls/{session.pk}/recordings/{rec.pk}/audio")
    assert response.status_code == 404 and b"no longer available" in response.content


# ---------------------------------------------------------------------------- retention


def test_retention_deletes_old_recordings_at_twilio_and_here(twilio_sandbox, transactional_db, caplog):
    setup = make_call_setup(sandbox=twilio_sandbox)
    setup.environment.recording_retention_days = 7
    setup.environment.save(update_fields=["recording_retention_days"])
    account = setup.connection.account_sid
    old = _completed_recording(twilio_sandbox, setup, setup.new_session(sandbox=twilio_sandbox))
    fresh = _completed_recording(twilio_sandbox, setup, setup.new_session(sandbox=twilio_sandbox))
    CallRecording.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    CallRecording.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(days=6))
    # another environment keeps recordings 30 days: 8 days old is kept there
    other = make_call_setup(sandbox=twilio_sandbox)
    kept = _completed_recording(twilio_sandbox, other, other.new_session(sandbox=twilio_sandbox))
    CallRecording.objects.filter(pk=kept.pk).update(created_at=timezone.now() - timedelta(days=8))

    with caplog.at_level(logging.INFO, logger="calls"):
        removed = tasks.recordings_purge_expired.delay().get()
    assert removed == 1
    assert old.recording_sid not in twilio_sandbox.state["recordings"][account]
    assert fresh.recording_sid in twilio_sandbox.state["recordings"][account]
    assert kept.recording_sid in twilio_sandbox.state["recordings"][other.connection.account_sid]
    assert set(CallRecording.objects.values_list("pk", flat=True)) == {fresh.pk, kept.pk}
    logged = [r for r in caplog.records if r.getMessage() == "recording deleted after retention"]
    assert [r.recording_sid for r in logged] == [old.recording_sid]
    assert setup.connection.auth_token not in caplog.text


def test_retention_keeps_what_twilio_could_not_delete_now(twilio_sandbox, transactional_db):
    setup = make_call_setup(sandbox=twilio_sandbox)
    rec = _completed_recording(twilio_sandbox, setup, setup.new_session(sandbox=twilio_sandbox))
    CallRecording.objects.filter(pk=rec.pk).update(created_at=timezone.now() - timedelta(days=31))
    twilio_sandbox.inject_fault(method="DELETE", path_pattern=r"/Recordings/", kind="500", times=1)
    assert tasks.recordings_purge_expired.delay().get() == 0
    assert CallRecording.objects.filter(pk=rec.pk).exists()
    assert tasks.recordings_purge_expired.delay().get() == 1  # next run
    assert not CallRecording.objects.exists()
    assert rec.recording_sid not in twilio_sandbox.state["recordings"][setup.connection.account_sid]


def test_retention_is_scheduled():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-recordings"]
    assert entry["task"] == "calls.tasks.recordings_purge_expired"
