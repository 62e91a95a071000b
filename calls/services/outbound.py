"""Calls an agent places: one call from Studio or the API, answering-machine detection, voicemail.

`agent_call_place` is THE service to place an agent call (Studio's "Call a number", `POST /api/v1/calls`, and
later campaigns): it checks the destination (valid, not on the do-not-call list), the caller ID (one of the
workspace's own numbers or a verified caller ID), the version and environment, the workspace's limit of
concurrent agent calls, writes the `CallSession` (direction "outbound-api", status "queued") and only then asks
Twilio (`twilio_gateway.call_create`) to dial, with answering-machine detection in the background
(`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`).

Twilio then requests, all signature-checked (`calls/webhooks.py`):
- `/v1/calls/outbound/<id>/answer` when the callee picks up: the same `<Connect>` TwiML an inbound call gets
  (through `_admission_twiml`, the one place that calls the admission code);
- `/v1/calls/outbound/<id>/amd` with `AnsweredBy`: a machine gets the version's voicemail after the beep (or a
  hang-up), a person goes on talking with the agent;
- `/v1/calls/outbound/<id>/status` with every status change: busy, no answer, failed and canceled end the call
  with that outcome;
- the handover callbacks of the call (`handover`, `dial-result`, `transfer-*`): the same services an incoming
  call's connector URLs reach (`calls.services.handovers` / `.transfers`), scoped to this one session.
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from calls.models import CallSession
from telephony.public_urls import absolute_url
from webhooks import services as webhook_services
from webhooks.models import EventType
from workspaces.models import AuditEntry
from workspaces.services import audit_record

logger = logging.getLogger(__name__)

MACHINE_ANSWERS = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
# A session still "live" after this long is counted out of the concurrency limit (its final callback was lost).
LIVE_WINDOW = timedelta(hours=2)
STATUS_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2}
FINAL_OUTCOME = {
    "busy": CallSession.Outcome.BUSY, "no-answer": CallSession.Outcome.NO_ANSWER,
    "failed": CallSession.Outcome.FAILED, "canceled": CallSession.Outcome.CANCELED,
}
MAX_VARIABLES = 50


class OutboundRefused(Exception):
    """The call was not placed. `code` is stable (API clients read it), `message` is for people,
    `status` the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, *, field: str = "", status: int = 422):
        super().__init__(message)
        self.code, self.message, self.field, self.status = code, message, field, status


# ---------------------------------------------------------------------------
# Variables in the instructions, greeting and voicemail


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(text: str, variables: dict) -> str:
    """`"Hi {first_name}"` with this call's variables; an unknown placeholder is left as written."""
    if not text or not variables:
        return text or ""
    return _PLACEHOLDER.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), text)


def clean_variables(variables) -> dict:
    if variables in (None, ""):
        return {}
    if not isinstance(variables, dict):
        raise OutboundRefused("invalid_variables", "Variables must be an object of names to values.",
                              field="variables")
    if len(variables) > MAX_VARIABLES:
        raise OutboundRefused("invalid_variables", f"At most {MAX_VARIABLES} variables.", field="variables")
    cleaned = {}
    for name, value in variables.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", str(name)):
            raise OutboundRefused("invalid_variables", f"{name!r} is not a variable name (letters, digits, _).",
                                  field="variables")
        if isinstance(value, (dict, list)):
            raise OutboundRefused("invalid_variables", f"The variable {name} must be text or a number.",
                                  field="variables")
        cleaned[str(name)] = "" if value is None else str(value)[:500]
    return cleaned


def outbound_context_fields(*, session, version) -> dict:
    """What an outbound call changes in the agent's `CallContext` (calls.engine.context calls this): the
    greeting and instructions with this call's variables, the instructions told that the agent is calling out,
    whom and why, and the greeting held until the callee has spoken."""
    variables = session.variables or {}
    about = [f"You are calling {session.to_number} on behalf of the business; the person did not call you. "
             "Wait for them to answer, say who you are and why you are calling."]
    if variables:
        about.append("What you know about this call: " + "; ".join(f"{k} = {v}" for k, v in variables.items()))
    instructions = fill(version.instructions, variables)
    return {
        "greeting": fill(version.greeting, variables),
        "instructions": "\n\n".join([*about, instructions]) if instructions else "\n\n".join(about),
        "greet_after_callee": True,
        "recording_status_url": absolute_url(f"/v1/calls/outbound/{session.pk}/recording-status"),
    }


# ---------------------------------------------------------------------------
# Placing a call


def _version_for(*, agent, version_mode: str, pinned_version=None):
    from agents.models import AgentVersion

    if version_mode == "pinned":
        if pinned_version is None or pinned_version.agent_id != agent.pk or not pinned_version.is_published:
            raise OutboundRefused("invalid_version", f"Choose a published version of {agent}.", field="version")
        return pinned_version
    if version_mode == "draft":
        version = AgentVersion.objects.filter(agent=agent, state=AgentVersion.State.DRAFT).first()
        if version is None:
            raise OutboundRefused("invalid_version", f"{agent} has no draft.", field="version")
        return version
    if version_mode != "published":
        raise OutboundRefused("invalid_version", "The version mode is published, draft or pinned.", field="version")
    version = agent.latest_version
    if version is None:
        raise OutboundRefused("invalid_version", f"{agent} has no published version yet: publish it first.",
                              field="agent")
    return version


def _destination(*, workspace, to: str) -> str:
    from telephony import numbering
    from telephony.selectors import do_not_call_listed

    try:
        to_number = numbering.to_e164(to or "", default_country=workspace.default_country)
    except numbering.InvalidNumber as exc:
        raise OutboundRefused("invalid_number", str(exc), field="to") from exc
    if do_not_call_listed(workspace=workspace, phone_number=to_number):
        raise OutboundRefused("do_not_call", f"{to_number} is on this workspace's do-not-call list: "
                                             "no agent or rep may call it.", field="to")
    return to_number


def _caller_id(*, workspace, to_number: str, from_number: str) -> str:
    from telephony import numbering
    from telephony.services import NoCallerId, caller_id_choose

    requested = ""
    if from_number:
        try:
            requested = numbering.to_e164(from_number, default_country=workspace.default_country)
        except numbering.InvalidNumber as exc:
            raise OutboundRefused("invalid_caller_id", str(exc), field="from") from exc
    try:
        return caller_id_choose(workspace=workspace, to_number=to_number, requested=requested or None).phone_number
    except NoCallerId as exc:
        raise OutboundRefused("invalid_caller_id", f"{exc} Calls go out only from the workspace's own numbers "
                                                   "or verified caller IDs.", field="from") from exc


def live_agent_calls(*, workspace_id: int) -> int:
    """Outbound agent calls of the workspace that are queued, ringing or in progress."""
    return CallSession.objects.filter(
        workspace_id=workspace_id, direction=CallSession.OUTBOUND, ended_at__isnull=True,
        status__in=[CallSession.Status.QUEUED, CallSession.Status.RINGING, CallSession.Status.IN_PROGRESS],
        started_at__gte=timezone.now() - LIVE_WINDOW,
    ).count()


def _session_create(*, workspace, version, environment, to_number: str, caller_id: str, variables: dict,
                    metadata: dict, placed_by: str) -> CallSession:
    """The session, under the workspace's row lock so two requests cannot both take the last free slot."""
    from telephony.selectors import max_concurrent_agent_calls
    from workspaces.models import Workspace

    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        limit = max_concurrent_agent_calls(workspace=workspace)
        if live_agent_calls(workspace_id=workspace.pk) >= limit:
            raise OutboundRefused("concurrency_limit", f"This workspace already has {limit} agent calls in "
                                                       "progress (its limit): try again when one ends.", status=429)
        return CallSession.objects.create(
            call_sid=f"pending-{secrets.token_hex(12)}", workspace=workspace, connector=None, agent_version=version,
            environment=environment, from_number=caller_id, to_number=to_number, direction=CallSession.OUTBOUND,
            status=CallSession.Status.QUEUED, variables=variables, metadata=metadata, placed_by=placed_by[:150],
        )


def outbound_urls(session: CallSession) -> dict:
    base = f"/v1/calls/outbound/{session.pk}"
    return {"url": absolute_url(f"{base}/answer"), "status_callback": absolute_url(f"{base}/status"),
            "amd_status_callback": absolute_url(f"{base}/amd")}


def agent_call_place(*, workspace, agent, environment, to: str, from_number: str = "",
                     version_mode: str = "published", pinned_version=None, variables: dict | None = None,
                     metadata: dict | None = None, placed_by: str = "", actor=None) -> CallSession:
    """Place one agent call and return its session (status "queued", Twilio's CallSid set).

    Raises `OutboundRefused` (nothing dialled, nothing written) for a bad or do-not-call number, a caller ID
    the workspace neither owns nor verified, an agent/environment/version that cannot take the call, the
    concurrency limit; and when Twilio refuses the call (the session stays, "failed", with the reason).
    """
    from agents.selectors import environment_completeness
    from telephony import errors, twilio_gateway
    from telephony.selectors import connection_get

    if agent.workspace_id != workspace.pk:
        raise OutboundRefused("invalid_agent", "Choose one of this workspace's agents.", field="agent", status=404)
    if environment is None or environment.workspace_id != workspace.pk:
        raise OutboundRefused("invalid_environment", "Choose one of this workspace's environments.",
                              field="environment", status=404)
    to_number = _destination(workspace=workspace, to=to)
    variables = clean_variables(variables)
    if metadata is not None and not isinstance(metadata, dict):
        raise OutboundRefused("invalid_metadata", "Metadata must be an object.", field="metadata")
    version = _version_for(agent=agent, version_mode=version_mode, pinned_version=pinned_version)
    completeness = environment_completeness(version=version, environment_id=environment.pk)
    if not completeness.complete:
        raise OutboundRefused("environment_incomplete", f"The {environment} environment lacks what {agent} "
                                                        f"{version.label} needs — {completeness.describe()}.",
                              field="environment")
    connection = connection_get(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise OutboundRefused("phone_system_not_ready", "Connect the workspace's Twilio account first "
                                                        "(Settings → Dialer).", status=409)
    caller_id = _caller_id(workspace=workspace, to_number=to_number, from_number=from_number)
    session = _session_create(workspace=workspace, version=version, environment=environment, to_number=to_number,
                              caller_id=caller_id, variables=variables, metadata=metadata or {},
                              placed_by=placed_by)
    try:
        info = twilio_gateway.call_create(creds=connection.credentials(), to=to_number, from_=caller_id,
                                          **outbound_urls(session))
    except errors.TwilioError as exc:
        reason = exc.display() if hasattr(exc, "display") else str(exc)
        CallSession.objects.filter(pk=session.pk).update(
            status=CallSession.Status.FAILED, outcome=CallSession.Outcome.FAILED, ended_at=timezone.now(),
            rejected_reason=f"Twilio did not place the call: {reason}"[:255])
        logger.warning("agent call not placed", extra={"call_session_id": session.pk, "code": exc.code,
                                                        "transient": exc.transient})
        raise OutboundRefused("twilio_error", f"Twilio did not place the call: {reason}",
                              status=503 if exc.transient else 422) from exc
    with transaction.atomic():
        CallSession.objects.filter(pk=session.pk).update(call_sid=info.sid)
        session.call_sid = info.sid
        audit_record(workspace=workspace.pk, actor=actor, action=AuditEntry.Action.AGENT_CALL_PLACED, target=session,
                     details={"to": to_number, "from": caller_id, "agent": agent.name, "version": version.label,
                              "placed_by": placed_by})
    return session


# ---------------------------------------------------------------------------
# Twilio's callbacks


def _admission_twiml(session: CallSession) -> str:
    """The `<Connect>` TwiML with a fresh single-use stream token (calls.services.admission builds it, as for an
    answered call: the version's transport, its relay attributes and languages)."""
    from calls.services.admission import stream_token_issue, stream_twiml
    from calls.services.handovers import relay_action_url

    # ConversationRelay's `<Connect action>`: the call's own handover callback (it has no connector).
    return stream_twiml(version=session.agent_version, token=stream_token_issue(call_session=session),
                        action_url=relay_action_url(session))


def _hangup_twiml() -> str:
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.hangup()
    return str(response)


def outbound_answer_twiml(*, session: CallSession, params: dict) -> str:
    """The callee picked up: connect the agent (a retried request gets a fresh token until the stream joins)."""
    if session.agent_version_id is None or session.ended_at is not None:
        return _hangup_twiml()
    if session.stream_token_used_at is not None:
        logger.warning("outbound answer replayed for a live call", extra={"call_session_id": session.pk})
        return _hangup_twiml()
    call_sid = (params.get("CallSid") or "")[:64]
    if session.call_sid.startswith("pending-") and call_sid:
        # Twilio answered before our request that placed the call came back with its CallSid.
        CallSession.objects.filter(pk=session.pk, call_sid=session.call_sid).update(call_sid=call_sid)
        session.call_sid = call_sid
    _status_advance(session=session, status="in-progress")
    return _admission_twiml(session)


def _status_advance(*, session: CallSession, status: str) -> None:
    rank = STATUS_RANK.get(status)
    if rank is None:
        return
    lower = [s for s, r in STATUS_RANK.items() if r < rank and s in CallSession.Status.values]
    CallSession.objects.filter(pk=session.pk, status__in=lower).update(status=status)


def voicemail_twiml(*, version, variables: dict) -> str | None:
    """What a machine gets after the beep: the version's recording (`<Play>` of a signed, short-lived URL) when
    its voicemail source is the recording and one is uploaded, else its message with the call's variables, said in
    its voice; None: nothing to leave (the call is hung up)."""
    from twilio.twiml.voice_response import VoiceResponse

    from agents import voicemail
    from agents.models import AgentVersion

    if version.machine_action != AgentVersion.MachineAction.VOICEMAIL:
        return None
    response = VoiceResponse()
    recording = (voicemail.recording_of(version)
                 if version.voicemail_source == AgentVersion.VoicemailSource.RECORDING else None)
    if recording is not None:
        response.play(absolute_url(f"/v1/audio/voicemail/{voicemail.audio_token(recording)}"))
        response.hangup()
        return str(response)
    text = fill(version.voicemail_message, variables).strip()
    if not text:
        return None
    from calls.services.transfers import twilio_say_voice

    say = {"language": version.language or "en-US"}
    if twilio_say_voice(version.voice):
        say["voice"] = version.voice  # a voice Twilio's <Say> speaks; other engines' voices fall back to the default
    response.say(text, **say)
    response.hangup()
    return str(response)


def amd_result_record(*, session: CallSession, params: dict) -> str:
    """Twilio's asynchronous AMD result: store `AnsweredBy`; a machine gets the voicemail after the beep (or a
    hang-up). Idempotent: a retried callback changes nothing twice. Returns what was done."""
    from telephony import errors, twilio_gateway
    from telephony.selectors import connection_get

    answered_by = (params.get("AnsweredBy") or "unknown")[:24]
    with transaction.atomic():
        locked = CallSession.objects.select_for_update(of=("self",)).select_related("agent_version").get(pk=session.pk)
        if locked.answered_by:
            return "repeat"
        machine = answered_by in MACHINE_ANSWERS
        version = locked.agent_version
        twiml = voicemail_twiml(version=version, variables=locked.variables or {}) if machine and version else None
        outcome = (CallSession.Outcome.VOICEMAIL_LEFT if twiml else CallSession.Outcome.MACHINE_HUNG_UP) if machine \
            else CallSession.Outcome.CONVERSATION
        CallSession.objects.filter(pk=locked.pk).update(answered_by=answered_by, outcome=outcome)
    if not machine:
        return "person"
    connection = connection_get(workspace=session.workspace_id)
    try:
        if twiml:
            twilio_gateway.call_update(creds=connection.credentials(), call_sid=session.call_sid, twiml=twiml)
        else:
            twilio_gateway.call_update(creds=connection.credentials(), call_sid=session.call_sid, status="completed")
    except errors.TwilioError as exc:
        # The callee hung up first (or Twilio refused): nothing was left.
        CallSession.objects.filter(pk=session.pk).update(outcome=CallSession.Outcome.MACHINE_HUNG_UP)
        logger.warning("voicemail not left", extra={"call_session_id": session.pk, "code": exc.code})
        return "failed"
    return "voicemail" if twiml else "hung-up"


def outbound_status_record(*, session: CallSession, params: dict) -> None:
    """Twilio's status callback: the status moves forward only; a call that ends without the agent's stream
    (busy, no answer, failed, canceled) ends here with that outcome and its call.ended event."""
    status = params.get("CallStatus", "")
    if status in STATUS_RANK:
        _status_advance(session=session, status="queued" if status == "initiated" else status)
        return
    if status not in ("completed", *FINAL_OUTCOME):
        return
    with transaction.atomic():
        locked = CallSession.objects.select_for_update().get(pk=session.pk)
        outcome = locked.outcome or FINAL_OUTCOME.get(status, CallSession.Outcome.CONVERSATION)
        fields = {"outcome": outcome}
        if locked.status not in (CallSession.Status.COMPLETED, *FINAL_OUTCOME):
            fields["status"] = status
        if locked.stream_token_used_at is None and locked.ended_at is None:
            # The agent never joined: this callback is the end of the call.
            fields["ended_at"] = timezone.now()
        CallSession.objects.filter(pk=locked.pk).update(**fields)
        if "ended_at" in fields:
            for key, value in fields.items():
                setattr(locked, key, value)
            webhook_services.call_event_record(session=locked, type=EventType.CALL_ENDED)


def outbound_recording_record(*, session: CallSession, params: dict):
    """The recording status callback of an outbound call (its CallSid must be this session's)."""
    from calls.services.recordings import _time_or_none, recording_status_record

    recording_sid = params.get("RecordingSid") or ""
    if not recording_sid or params.get("CallSid") != session.call_sid:
        return None
    return recording_status_record(
        call_session_id=session.pk, recording_sid=recording_sid, status=params.get("RecordingStatus") or "",
        duration=params.get("RecordingDuration"), channels=params.get("RecordingChannels"),
        source=params.get("RecordingSource") or "", error_code=params.get("ErrorCode") or "",
        started_at=_time_or_none(params.get("RecordingStartTime")))


def outbound_session_for_webhook(*, session_id: int):
    """(session, connection) for a callback URL, one query; None for an unknown id or an inbound call."""
    from telephony.models import TwilioConnection

    session = (CallSession.objects.select_related("agent_version", "workspace")
               .filter(pk=session_id, direction=CallSession.OUTBOUND).first())
    if session is None:
        return None, None
    return session, TwilioConnection.objects.filter(workspace_id=session.workspace_id).first()


__all__ = ["agent_call_place", "OutboundRefused", "amd_result_record", "outbound_status_record",
           "outbound_answer_twiml", "fill", "outbound_context_fields", "live_agent_calls"]
