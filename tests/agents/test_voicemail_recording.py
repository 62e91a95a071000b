"""A version's voicemail recording (issue 23): uploaded on the draft (MP3/WAV, size-limited, clear refusals that
keep the old one), copied on publish, shown in the publish diff and on the version page."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents import selectors, services, voicemail
from agents.models import ImmutableVersionError, VoicemailRecording

from .factories import AgentFactory, draft_of

pytestmark = pytest.mark.django_db

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(64)


def test_mp3_and_wav_are_accepted_and_anything_else_refused_with_the_reason(settings):
    assert voicemail.recording_check(filename="vm.wav", data=WAV) == "audio/wav"
    assert voicemail.recording_check(filename="VM.MP3", data=MP3) == "audio/mpeg"
    with pytest.raises(voicemail.RecordingRefused, match="not an MP3 or WAV file"):
        voicemail.recording_check(filename="notes.txt", data=b"hello")
    with pytest.raises(voicemail.RecordingRefused, match="named .mp3 but is not MP3 or WAV audio"):
        voicemail.recording_check(filename="fake.mp3", data=b"<html>not audio</html>")
    with pytest.raises(voicemail.RecordingRefused, match="is empty"):
        voicemail.recording_check(filename="empty.wav", data=b"")
    settings.VOICEMAIL_MAX_BYTES = 1024 * 1024
    with pytest.raises(voicemail.RecordingRefused, match=r"2\.0 MB; a voicemail recording may be at most 1 MB"):
        voicemail.recording_check(filename="long.wav", data=WAV + bytes(2 * 1024 * 1024 - len(WAV)))


def test_the_recording_is_copied_on_publish_and_shown_in_the_diff(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, machine_action="voicemail", voicemail_source="recording")
    voicemail.voicemail_recording_set(draft=draft, filename="hello.wav", data=WAV)

    diff = selectors.version_diff(draft=draft, base=None)
    [change] = [a for a in diff.actions if a.name == "voicemail recording"]
    assert change.change == "added" and change.new["filename"] == "hello.wav"
    assert any(f.field == "voicemail_source" for f in diff.fields)

    v1 = services.agent_publish(agent=agent)
    copied = VoicemailRecording.objects.get(version=v1)
    assert bytes(copied.audio) == WAV and copied.filename == "hello.wav"
    with pytest.raises(ImmutableVersionError):
        voicemail.voicemail_recording_set(draft=v1, filename="x.wav", data=WAV)

    # A new recording on the draft is a change; the published one keeps its own.
    voicemail.voicemail_recording_set(draft=draft, filename="second.mp3", data=MP3)
    [change] = [a for a in selectors.version_diff(draft=draft, base=v1).actions if a.name == "voicemail recording"]
    assert change.change == "changed" and change.old["filename"] == "hello.wav"
    assert bytes(VoicemailRecording.objects.get(version=v1).audio) == WAV
    voicemail.voicemail_recording_remove(draft=draft)
    [change] = [a for a in selectors.version_diff(draft=draft, base=v1).actions if a.name == "voicemail recording"]
    assert change.change == "removed"


def test_upload_page_stores_it_and_refuses_a_bad_file_next_to_the_field(workspace, admin_client):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    url = f"/studio/agents/{agent.pk}/voicemail/"

    response = admin_client.post(url, {"audio": SimpleUploadedFile("hello.wav", WAV, "audio/wav")})
    assert response.status_code == 302
    page = admin_client.get(f"/studio/agents/{agent.pk}/").content.decode()
    assert "hello.wav" in page

    response = admin_client.post(url, {"audio": SimpleUploadedFile("notes.txt", b"hi", "text/plain")})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-audio"' in html and "not an MP3 or WAV file" in html
    assert VoicemailRecording.objects.get(version=draft).filename == "hello.wav"  # the old one kept

    published = services.agent_publish(agent=agent)
    version_page = admin_client.get(f"/studio/agents/{agent.pk}/versions/{published.pk}/").content.decode()
    assert "hello.wav" in version_page


def test_the_audio_url_is_signed_and_short_lived(workspace, client):
    from django.core import signing

    agent = AgentFactory(workspace=workspace)
    recording = voicemail.voicemail_recording_set(draft=draft_of(agent), filename="hello.wav", data=WAV)
    token = voicemail.audio_token(recording)

    response = client.get(f"/v1/audio/voicemail/{token}")
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav" and response.content == WAV
    assert client.get(f"/v1/audio/voicemail/{token}x").status_code == 404
    assert voicemail.audio_for_token(token) is not None
    # Signed 11 minutes ago (a fake clock for the signer): expired.
    import time
    from unittest import mock

    with mock.patch.object(signing, "time") as fake_time:
        fake_time.time.return_value = time.time() - voicemail.URL_SECONDS - 60
        old = voicemail.audio_token(recording)
    assert voicemail.audio_for_token(old) is None
    assert client.get(f"/v1/audio/voicemail/{old}").status_code == 404
