"""Writes of Calls in Studio: recordings (runtime start, Twilio's status callbacks, retention), interventions.

Keyword-only, transactional. The recording status callback is idempotent: Twilio retries callbacks and may
deliver them out of order, so a recording's status only ever moves forward (see `CallRecording.RANK`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from calls.models import CallIntervention, CallRecording, CallSession
from telephony import errors, twilio_gateway
from webhooks import services as webhook_services
from webhooks.models import EventType
from workspaces.models import AuditEntry
from workspaces.services import audit_record

logger = logging.getLogger("calls")


# ---------------------------------------------------------------------------
# Recordings


def recording_error_set(*, call_session_id: int, text: str) -> None:
    CallSession.objects.filter(pk=call_session_id).update(recording_error=text[:255])


def _int_or_none(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _time_or_none(value) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _recording_ready(rec: CallRecording) -> None:
    """The recording.ready webhook event, in the caller's transaction (once: a status only moves forward)."""
    session = CallSession.objects.select_related("agent_version").get(pk=rec.call_session_id)
    webhook_services.call_event_record(session=session, type=EventType.RECORDING_READY,
                                       recording=webhook_services.recording_data(rec))


def recording_status_record(*, call_session_id: int, recording_sid: str, status: str, duration=None, channels=None,
                            source: str = "", error_code: str = "", started_at: datetime | None = None,
                            from_callback: bool = True) -> CallRecording:
    """Create or update the recording row; a status never moves backwards, a repeated one changes nothing but the
    callback count. Safe under concurrent callbacks (row lock; a lost insert race re-reads the winner)."""
    status = (status or "").strip().lower() or CallRecording.Status.IN_PROGRESS
    if status not in CallRecording.RANK:
        status = CallRecording.Status.FAILED
    for _ in range(2):
        try:
            with transaction.atomic():
                rec = CallRecording.objects.select_for_update().filter(recording_sid=recording_sid).first()
                if rec is None:
                    rec = CallRecording.objects.create(
                        call_session_id=call_session_id, recording_sid=recording_sid, status=status,
                        duration=_int_or_none(duration) if status in CallRecording.FINAL else None,
                        channels=_int_or_none(channels), source=source[:40], error_code=str(error_code or "")[:16],
                        recording_started_at=started_at, callbacks=1 if from_callback else 0)
                    CallSession.objects.filter(pk=call_session_id).exclude(recording_error="").update(recording_error="")
                    if rec.status == CallRecording.Status.COMPLETED:
                        _recording_ready(rec)
                    return rec
                fields = []
                if from_callback:
                    rec.callbacks = F("callbacks") + 1
                    fields.append("callbacks")
                if CallRecording.RANK[status] > CallRecording.RANK.get(rec.status, 0):
                    rec.status = status
                    fields.append("status")
                    if status in CallRecording.FINAL and _int_or_none(duration) is not None:
                        rec.duration = _int_or_none(duration)
                        fields.append("duration")
                    if error_code:
                        rec.error_code = str(error_code)[:16]
                        fields.append("error_code")
                # Fill in what an earlier (or out-of-order) event did not carry; never overwrite.
                if rec.channels is None and _int_or_none(channels) is not None:
                    rec.channels = _int_or_none(channels)
                    fields.append("channels")
                if not rec.source and source:
                    rec.source = source[:40]
                    fields.append("source")
                if rec.recording_started_at is None and started_at is not None:
                    rec.recording_started_at = started_at
                    fields.append("recording_started_at")
                if fields:
                    rec.save(update_fields=[*fields, "updated_at"])
                    rec.refresh_from_db()
                    if "status" in fields and rec.status == CallRecording.Status.COMPLETED:
                        _recording_ready(rec)
                return rec
        except IntegrityError:
            continue  # a concurrent callback inserted it first: update that row
    raise RuntimeError("could not record the recording status")


def recording_callback_record(*, connector, params: dict) -> CallRecording | None:
    """Twilio's recording status callback (signature already checked): the call must be this connector's."""
    call_sid = params.get("CallSid") or ""
    recording_sid = params.get("RecordingSid") or ""
    if not call_sid or not recording_sid:
        return None
    session_id = (CallSession.objects.filter(call_sid=call_sid, connector=connector)
                  .values_list("pk", flat=True).first())
    if session_id is None:
        logger.warning("recording callback for an unknown call", extra={"connector_id": connector.pk,
                                                                          "recording_sid": recording_sid})
        return None
    rec = recording_status_record(
        call_session_id=session_id, recording_sid=recording_sid, status=params.get("RecordingStatus") or "",
        duration=params.get("RecordingDuration"), channels=params.get("RecordingChannels"),
        source=params.get("RecordingSource") or "", error_code=params.get("ErrorCode") or "",
        started_at=_time_or_none(params.get("RecordingStartTime")))
    logger.info("recording status", extra={"recording_sid": recording_sid, "status": rec.status,
                                           "call_sid": call_sid})
    return rec


def recordings_due(*, now: datetime | None = None) -> list[CallRecording]:
    """Recordings past their environment's retention (a call without an environment: 30 days), oldest first."""
    from django.db.models import Q

    from agents.models import Environment

    now = now or timezone.now()
    due = Q(call_session__environment__isnull=True, created_at__lt=now - timedelta(days=30))
    # One condition per retention period in use (a handful), evaluated by the database.
    for days in Environment.objects.values_list("recording_retention_days", flat=True).distinct():
        due |= Q(call_session__environment__recording_retention_days=days, created_at__lt=now - timedelta(days=days))
    return list(CallRecording.objects.select_related("call_session").filter(due).order_by("created_at")[:5000])


def recordings_purge_expired(*, now: datetime | None = None) -> list[dict]:
    """Delete recordings past retention at Twilio, then here; log each removal. A recording Twilio could not
    delete now (transient error, no connection) stays for the next run. Returns what was removed."""
    from telephony.models import TwilioConnection

    removed, creds_by_ws = [], {}
    for rec in recordings_due(now=now):
        ws_id = rec.call_session.workspace_id
        if ws_id not in creds_by_ws:
            conn = TwilioConnection.objects.filter(workspace_id=ws_id).first()
            creds_by_ws[ws_id] = conn.credentials() if conn is not None and conn.has_credentials else None
        creds = creds_by_ws[ws_id]
        if creds is None:
            logger.warning("recording past retention kept: the workspace has no Twilio connection",
                           extra={"recording_sid": rec.recording_sid, "workspace_id": ws_id})
            continue
        try:
            twilio_gateway.recording_delete(creds=creds, recording_sid=rec.recording_sid)  # 404: already gone
        except errors.TwilioError as exc:
            logger.warning("recording past retention not deleted at Twilio; retried next run",
                           extra={"recording_sid": rec.recording_sid, "code": exc.code, "transient": exc.transient})
            continue
        age_days = (timezone.now() - rec.created_at).days
        info = {"recording_sid": rec.recording_sid, "call_sid": rec.call_session.call_sid, "workspace_id": ws_id,
                "age_days": age_days, "duration": rec.duration}
        rec.delete()
        logger.info("recording deleted after retention", extra=info)
        removed.append(info)
    if removed:
        logger.info("recording retention run", extra={"removed": len(removed)})
    return removed


# ---------------------------------------------------------------------------
# Interventions


def transfer_number_clean(value: str) -> str:
    """The number a supervisor typed, as E.164; ValidationError with a message for the field otherwise."""
    from agents.models import validate_e164

    value = (value or "").strip().replace(" ", "")
    if not value:
        raise ValidationError("Enter the number to transfer to, e.g. +31201234567.")
    validate_e164(value)
    return value


@transaction.atomic
def intervention_record(*, call_session_id: int, user, kind: str, detail: str = "",
                        result: str = "") -> CallIntervention:
    if kind not in CallIntervention.Kind.values:
        raise ValidationError("Unknown intervention.")
    intervention = CallIntervention.objects.create(call_session_id=call_session_id, user=user,
                                                   username=getattr(user, "get_username", lambda: "")()[:150],
                                                   kind=kind, detail=detail[:2000], result=result[:255])
    call = CallSession.objects.only("pk", "workspace_id", "call_sid").get(pk=call_session_id)
    audit_record(workspace=call.workspace_id, actor=user, action=AuditEntry.Action.CALL_INTERVENED, target=call,
                 details={"kind": kind, "result": result[:255]})
    return intervention


def call_listen_record(*, call_session, actor, ip: str | None = None) -> None:
    """A supervisor opened the listen socket of a live call."""
    audit_record(workspace=call_session.workspace_id, actor=actor, action=AuditEntry.Action.CALL_LISTENED,
                 target=call_session, ip=ip)


def call_export_record(*, call_session, actor) -> None:
    """Someone downloaded a call's JSON export (transcript, handovers, interventions)."""
    audit_record(workspace=call_session.workspace_id, actor=actor, action=AuditEntry.Action.CALL_EXPORTED,
                 target=call_session, details={"format": "json"})
