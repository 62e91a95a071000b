"""A version's voicemail recording: upload (type and size checked, with messages people can act on), removal,
the copy on publish / new draft / restore and the publish diff row (both registered in agents/hooks.py by
`AgentsConfig.ready`), and what `<Play>` needs: the audio at a signed, short-lived URL.

Twilio's `<Play>` takes MP3, WAV (PCM, μ-law, A-law), AIFF, GSM and μ-law files; we accept MP3 and WAV, told by
their first bytes as well as their name (a renamed text file is refused)."""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing
from django.db import transaction

from agents.models import AgentVersion, ImmutableVersionError, VoicemailRecording

ACCEPTED = {".mp3": "audio/mpeg", ".wav": "audio/wav"}
AUDIO_SALT = "callwell.voicemail-audio"
URL_SECONDS = 600  # Twilio fetches the audio right after the redirect; the link is useless after this


class RecordingRefused(ValueError):
    """The upload was not stored; the message says why and what to do."""


def max_bytes() -> int:
    return int(getattr(settings, "VOICEMAIL_MAX_BYTES", 5 * 1024 * 1024))


def _kind(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def recording_check(*, filename: str, data: bytes) -> str:
    """The content type of an acceptable recording; RecordingRefused with the reason otherwise."""
    name = (filename or "").strip()
    extension = name[name.rfind("."):].lower() if "." in name else ""
    if extension not in ACCEPTED:
        raise RecordingRefused(f"“{name or 'The file'}” is not an MP3 or WAV file: upload the recording as .mp3 or "
                               ".wav (Twilio plays those after the beep).")
    if not data:
        raise RecordingRefused(f"“{name}” is empty: export the recording again and upload it.")
    limit = max_bytes()
    if len(data) > limit:
        raise RecordingRefused(f"“{name}” is {len(data) / 1048576:.1f} MB; a voicemail recording may be at most "
                               f"{limit // 1048576} MB (a minute of MP3 is about 1 MB).")
    kind = _kind(data[:16])
    if kind is None:
        raise RecordingRefused(f"“{name}” is named {extension} but is not MP3 or WAV audio: export it again as "
                               "MP3 or WAV.")
    return kind


@transaction.atomic
def voicemail_recording_set(*, draft: AgentVersion, filename: str, data: bytes) -> VoicemailRecording:
    """Store (or replace) the draft's recording. RecordingRefused: nothing stored, the old one kept."""
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Only the draft's recording can be changed.")
    content_type = recording_check(filename=filename, data=data)
    VoicemailRecording.objects.filter(version=draft).delete()
    return VoicemailRecording.objects.create(
        version=draft, filename=filename.strip()[-120:], content_type=content_type, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), audio=data)


@transaction.atomic
def voicemail_recording_remove(*, draft: AgentVersion) -> bool:
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Only the draft's recording can be changed.")
    deleted, _ = VoicemailRecording.objects.filter(version=draft).delete()
    return bool(deleted)


def recording_of(version) -> VoicemailRecording | None:
    if version is None:
        return None
    return VoicemailRecording.objects.filter(version=version).defer("audio").first()


# -- agents/hooks.py ---------------------------------------------------------------


def version_recording_copy(*, source, target, reason: str) -> None:
    """The recording goes with the content: to a new published version, a new draft, or (restore) the draft."""
    VoicemailRecording.objects.filter(version=target).delete()
    original = VoicemailRecording.objects.filter(version=source).first()
    if original is not None:
        VoicemailRecording.objects.bulk_create([VoicemailRecording(
            version=target, filename=original.filename, content_type=original.content_type, size=original.size,
            sha256=original.sha256, audio=bytes(original.audio))])


def version_recording_diff(*, draft, base) -> list:
    from agents.selectors import ActionChange

    new = recording_of(draft)
    old = recording_of(base)
    if new is None and old is None:
        return []
    label = "voicemail recording"
    if old is None:
        return [ActionChange(label, "added", None, new.content())]
    if new is None:
        return [ActionChange(label, "removed", old.content(), None)]
    if old.sha256 != new.sha256:
        return [ActionChange(label, "changed", old.content(), new.content())]
    return []


# -- the audio for <Play> ------------------------------------------------------------


def audio_token(recording: VoicemailRecording) -> str:
    return signing.dumps({"r": recording.pk, "h": recording.sha256[:16]}, salt=AUDIO_SALT)


def audio_for_token(token: str) -> VoicemailRecording | None:
    """The recording a signed token names while it is fresh (URL_SECONDS), else None."""
    try:
        data = signing.loads(token, salt=AUDIO_SALT, max_age=URL_SECONDS)
    except signing.BadSignature:
        return None
    recording = VoicemailRecording.objects.filter(pk=data.get("r")).first()
    if recording is None or recording.sha256[:16] != data.get("h"):
        return None
    return recording
