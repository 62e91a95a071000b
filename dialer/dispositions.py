"""Dispositions, notes and voicemail drop for dialer calls (writes; keyword-only, transactional).

- `dispositions_for` seeds the workspace's list on first use (Disposition.DEFAULTS) and returns the active ones;
  Settings → Dialer adds, renames, re-maps and archives them (`disposition_save`, `disposition_archive`).
- `call_disposition_set`: after a call the rep who made (or took) it picks a disposition and writes notes.
- Voicemail drop: the workspace's one message (`voicemail_message_save`) is played to the callee's leg of a live
  call: the leg is redirected through the gateway (`call_update` with `<Play>` then `<Hangup>`), which ends the
  browser's `<Dial>`, so the rep is free at once; the call's disposition becomes "left voicemail". Twilio fetches
  the audio from a signed URL (`voicemail_message_url`): no session, nothing to guess.
"""
from __future__ import annotations

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from twilio.twiml.voice_response import VoiceResponse

from dialer.models import Call, CallLeg, Disposition, VoicemailDropMessage
from telephony import twilio_gateway
from telephony.errors import TwilioError
from telephony.public_urls import absolute_url

SIGNING_SALT = "dialer.voicemail-drop"


class DispositionError(Exception):
    """A disposition or voicemail-drop action that cannot be done; the message is for people."""


def dispositions_seed(*, workspace) -> None:
    if Disposition.objects.filter(workspace=workspace).exists():
        return
    try:
        with transaction.atomic():
            Disposition.objects.bulk_create([
                Disposition(workspace=workspace, key=key, name=name, outcome=outcome, position=index)
                for index, (key, name, outcome) in enumerate(Disposition.DEFAULTS)])
    except IntegrityError:  # another request seeded it first
        pass


def dispositions_for(*, workspace) -> list[Disposition]:
    """The workspace's active dispositions, in order (seeded on first use)."""
    dispositions_seed(workspace=workspace)
    return list(Disposition.objects.filter(workspace=workspace, archived=False))


def disposition_by_key(*, workspace, key: str) -> Disposition | None:
    dispositions_seed(workspace=workspace)
    return Disposition.objects.filter(workspace=workspace, key=key).first()


@transaction.atomic
def disposition_save(*, workspace, name: str, outcome: str, disposition: Disposition | None = None) -> Disposition:
    name = (name or "").strip()[:60]
    if not name:
        raise DispositionError("Give the disposition a name.")
    if outcome not in Disposition.Outcome.values:
        raise DispositionError("Choose what a campaign counts it as.")
    clash = Disposition.objects.filter(workspace=workspace, name__iexact=name)
    if disposition is not None:
        clash = clash.exclude(pk=disposition.pk)
    if clash.exists():
        raise DispositionError(f"There is already a disposition named “{name}”.")
    if disposition is None:
        position = (Disposition.objects.filter(workspace=workspace).aggregate(m=Max("position"))["m"] or 0) + 1
        return Disposition.objects.create(workspace=workspace, name=name, outcome=outcome, position=position)
    disposition.name, disposition.outcome, disposition.archived = name, outcome, False
    disposition.save(update_fields=["name", "outcome", "archived"])
    return disposition


def disposition_archive(*, workspace, disposition_id: int) -> None:
    Disposition.objects.filter(workspace=workspace, pk=disposition_id).update(archived=True)


def _call_of(*, workspace, user, call_sid: str) -> Call:
    call = Call.objects.filter(workspace=workspace, sid=call_sid).first()
    if call is None:
        raise DispositionError("That call is not in this workspace's call log (yet).")
    if call.user_id not in (None, user.pk):
        raise DispositionError("Only the rep on the call can set its disposition.")
    return call


@transaction.atomic
def call_disposition_set(*, workspace, user, call_sid: str, disposition_id: int | None, notes: str = "") -> Call:
    """The rep's disposition and notes for one of their dialer calls (set again: replaced)."""
    call = _call_of(workspace=workspace, user=user, call_sid=call_sid)
    disposition = None
    if disposition_id:
        disposition = Disposition.objects.filter(workspace=workspace, pk=disposition_id).first()
        if disposition is None:
            raise DispositionError("Choose one of the workspace's dispositions.")
    call.disposition = disposition
    call.notes = (notes or "").strip()[:5000]
    call.save(update_fields=["disposition", "notes", "updated_at"])
    return call


# ---------------------------------------------------------------------------
# Voicemail drop


@transaction.atomic
def voicemail_message_save(*, workspace, data: bytes, content_type: str, file_name: str = "") -> VoicemailDropMessage:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type not in VoicemailDropMessage.CONTENT_TYPES:
        raise DispositionError("Upload the message as an MP3 or WAV file (Twilio plays those).")
    if not data:
        raise DispositionError("The file is empty.")
    if len(data) > VoicemailDropMessage.MAX_BYTES:
        raise DispositionError("The message is larger than 2 MB: keep it under a minute.")
    message, _ = VoicemailDropMessage.objects.update_or_create(
        workspace=workspace, defaults={"audio": data, "content_type": content_type, "file_name": file_name[:200]})
    return message


def voicemail_message_delete(*, workspace) -> None:
    VoicemailDropMessage.objects.filter(workspace=workspace).delete()


def _signer() -> signing.Signer:
    return signing.Signer(salt=SIGNING_SALT)


def voicemail_message_url(*, message: VoicemailDropMessage) -> str:
    """The message's URL for Twilio: signed, naming the workspace and the message's version (a new message makes
    the old URLs 404)."""
    token = _signer().sign_object({"w": message.workspace_id, "v": int(message.updated_at.timestamp())})
    ext = VoicemailDropMessage.CONTENT_TYPES[message.content_type]
    return absolute_url("dialer:voicemail_message_audio", token) + f"?f=message.{ext}"


def voicemail_message_for_token(*, token: str) -> VoicemailDropMessage | None:
    try:
        value = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    message = VoicemailDropMessage.objects.filter(workspace_id=value.get("w")).first()
    if message is None or int(message.updated_at.timestamp()) != value.get("v"):
        return None
    return message


def drop_twiml(*, audio_url: str) -> str:
    response = VoiceResponse()
    response.play(audio_url)
    response.hangup()
    return str(response)


def voicemail_drop(*, workspace, user, call_sid: str, connection) -> Call:
    """Play the workspace's message to the callee's leg of the rep's live call and free the rep."""
    call = _call_of(workspace=workspace, user=user, call_sid=call_sid)
    message = VoicemailDropMessage.objects.filter(workspace=workspace).first()
    if message is None:
        raise DispositionError("Record or upload the voicemail message first (Settings → Dialer).")
    if call.direction != Call.Direction.OUTBOUND or call.is_final:
        raise DispositionError("Voicemail drop works on an outbound call that is still going.")
    leg = (CallLeg.objects.filter(call=call, kind=CallLeg.Kind.NUMBER)
           .exclude(status__in=["completed", "busy", "no-answer", "failed", "canceled"]).order_by("-started_at").first())
    if leg is None:
        raise DispositionError("Nobody has answered yet: there is no machine to leave the message on.")
    if connection is None or not connection.has_credentials:
        raise DispositionError("The phone system is not connected (Settings → Dialer).")
    try:
        twilio_gateway.call_update(creds=connection.credentials(), call_sid=leg.sid,
                                   twiml=drop_twiml(audio_url=voicemail_message_url(message=message)))
    except TwilioError as exc:
        raise DispositionError(f"Twilio could not play the message: {exc.retry_hint()}") from exc
    left = disposition_by_key(workspace=workspace, key="left_voicemail")
    with transaction.atomic():
        fields = {"voicemail_dropped_at": timezone.now()}
        if left is not None and not left.archived:
            fields["disposition"] = left
        Call.objects.filter(pk=call.pk).update(**fields)
    call.refresh_from_db()
    return call
