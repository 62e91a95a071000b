"""Handover execution: the agent chose an action; move the live call to its destination and record it.

- Media Streams: `redirect_to_dial` redirects the live call (gateway `call_update`) to
  `<Dial action=".../v1/agents/{identifier}/dial-result?handover=ID"><Number>DEST</Number></Dial>`.
- ConversationRelay: the runtime records the handover and sends `end` with handoff data
  `{"reason": "handover", "action": NAME, "handover_id": ID}`; the `<Connect action>` URL answers with
  `relay_handover_twiml` (the same `<Dial>`).
- The Dial's action callback (`dial_result_record`) records the outcome once (a retried callback gets the
  same stored answer); on busy / no answer / failure: a spoken message, then the fallback
  (environment variable HANDOVER_FALLBACK: "hangup", "agent" = back to the agent through
  `calls.services.admission.stream_twiml` with a new stream token, or an action name).
- `call_hangup`: the agent ends the call; a call the caller already ended (20404 / 21220) is not an error.

Blocking functions (database, gateway) are sync; the async runtime runs them with
`database_sync_to_async` (DB) and `asyncio.to_thread` (the gateway).
"""
from __future__ import annotations

import json
import logging

from django.db import transaction
from django.utils import timezone
from twilio.twiml.voice_response import Dial, VoiceResponse

from calls.engine.context import FALLBACK_VARIABLE, CallContext, HandoverActionSpec
from calls.models import CallHandover
from telephony import errors, twilio_gateway
from telephony.public_urls import absolute_url
from webhooks import services as webhook_services
from webhooks.models import EventType

logger = logging.getLogger(__name__)

CALL_NOT_IN_PROGRESS = 21220  # "Call is not in-progress. Cannot redirect."
GONE_CODES = {errors.NOT_FOUND, CALL_NOT_IN_PROGRESS}

DIAL_FAILED_MESSAGE = "Sorry, we could not connect you."
AGENT_FAILED_MESSAGE = "Sorry, something went wrong on our side."
DIAL_OUTCOMES = {
    "completed": CallHandover.Outcome.ANSWERED,
    "answered": CallHandover.Outcome.ANSWERED,
    "busy": CallHandover.Outcome.BUSY,
    "no-answer": CallHandover.Outcome.NO_ANSWER,
    "failed": CallHandover.Outcome.FAILED,
    "canceled": CallHandover.Outcome.FAILED,
}


def call_is_gone(exc: errors.TwilioError) -> bool:
    return exc.code in GONE_CODES or (exc.status == 404 and exc.code is None)


# ---------------------------------------------------------------------------
# TwiML


def _say(response: VoiceResponse, text: str, language: str = "") -> None:
    if language:
        response.say(text, language=language)
    else:
        response.say(text)


def dial_twiml(*, destination: str, action_url: str, say: str = "", language: str = "") -> str:
    response = VoiceResponse()
    if say:
        _say(response, say, language)
    dial = Dial(action=action_url, method="POST")
    dial.number(destination)
    response.append(dial)
    return str(response)


def callback_base(*, connector_identifier: str = "", call_session_id: int | None = None) -> str:
    """The path Twilio's handover callbacks of a call go under: its connector's `/v1/agents/<identifier>` for a
    call that came in through one, else the call session's own `/v1/calls/outbound/<id>` (a call an agent placed
    from Studio or the API has no connector: calls/webhooks.py answers there)."""
    if connector_identifier:
        return f"/v1/agents/{connector_identifier}"
    return f"/v1/calls/outbound/{call_session_id}"


def session_callback_base(session) -> str:
    return callback_base(connector_identifier=session.connector.identifier if session.connector_id else "",
                         call_session_id=session.pk)


def context_callback_base(ctx: CallContext) -> str:
    return callback_base(connector_identifier=ctx.connector_identifier, call_session_id=ctx.call_session_id)


def relay_action_url(session) -> str:
    """ConversationRelay's `<Connect action>` for a call: where Twilio asks what follows the relay's `end`."""
    return absolute_url(f"{session_callback_base(session)}/handover")


def dial_result_url(*, base: str, handover_id: int) -> str:
    return absolute_url(f"{base}/dial-result?handover={handover_id}")


def owned_by(*, connector=None, call_session=None) -> dict:
    """The filter that keeps a callback to its own calls: the connector's, or the one call session's."""
    if connector is not None:
        return {"call_session__connector": connector}
    return {"call_session": call_session}


# ---------------------------------------------------------------------------
# Recording


def _handover_event(*, handover: CallHandover, type: str, session=None) -> None:
    """The handover's webhook event, in the caller's transaction (calls through no environment send none)."""
    from calls.models import CallSession

    session = session or CallSession.objects.select_related("agent_version").get(pk=handover.call_session_id)
    webhook_services.call_event_record(session=session, type=type,
                                       handover=webhook_services.handover_data(handover))


@transaction.atomic
def handover_record(*, call_session_id: int, action: HandoverActionSpec, transport: str,
                    outcome: str = CallHandover.Outcome.PENDING, detail: str = "") -> CallHandover:
    handover = CallHandover.objects.create(call_session_id=call_session_id, action_name=action.name,
                                           destination=action.destination, transport=transport, outcome=outcome,
                                           outcome_at=None if outcome == CallHandover.Outcome.PENDING else timezone.now(),
                                           detail=detail[:255])
    _handover_event(handover=handover, type=EventType.HANDOVER_STARTED)
    return handover


@transaction.atomic
def handover_outcome_set(*, handover_id: int, outcome: str, detail: str = "") -> None:
    changed = CallHandover.objects.filter(pk=handover_id, outcome=CallHandover.Outcome.PENDING).update(
        outcome=outcome, outcome_at=timezone.now(), detail=detail[:255])
    if changed:
        handover = CallHandover.objects.select_related("call_session__agent_version").get(pk=handover_id)
        _handover_event(handover=handover, type=EventType.HANDOVER_COMPLETED, session=handover.call_session)


def transcript_save(*, call_session_id: int, turns: list[tuple]) -> None:
    """Append turns (role, text, heard[, started as a unix time[, latency dict]]) after the ones already stored.

    The runtime calls this as the call goes (each new turn, from the call's side task), and once more at the end.
    """
    from datetime import datetime
    from datetime import timezone as dt_timezone

    from calls.models import CallTurn

    if not turns:
        return
    now = timezone.now()
    rows = []
    for turn in turns:
        role, text, heard = turn[:3]
        started = datetime.fromtimestamp(turn[3], tz=dt_timezone.utc) if len(turn) > 3 and turn[3] else now
        latency = turn[4] if len(turn) > 4 and turn[4] else {}
        rows.append((role, text, heard, started, latency))
    with transaction.atomic():
        last = CallTurn.objects.filter(call_session_id=call_session_id).order_by("-seq").values_list("seq", flat=True).first()
        start = (last or 0) + 1
        CallTurn.objects.bulk_create([
            CallTurn(call_session_id=call_session_id, seq=start + i, role=role, text=text, heard=heard,
                     started_at=started, **latency)
            for i, (role, text, heard, started, latency) in enumerate(rows)
        ])


def transcript_turn_cut(*, call_session_id: int, seq: int, text: str) -> None:
    """A stored agent turn the caller interrupted: it keeps only what was heard (`heard` False)."""
    from calls.models import CallTurn

    CallTurn.objects.filter(call_session_id=call_session_id, seq=seq, role="agent").update(text=text, heard=False)


@transaction.atomic
def call_session_ended(*, call_session_id: int, runtime_error: str = "") -> None:
    """The agent's part of the call is over: end time, "completed" unless Twilio said otherwise, any failure."""
    from calls.models import CallSession

    fields = {"ended_at": timezone.now()}
    if runtime_error:
        fields["runtime_error"] = runtime_error[:255]
    ended = CallSession.objects.filter(pk=call_session_id, ended_at__isnull=True).update(**fields)
    CallSession.objects.filter(pk=call_session_id, status__in=[CallSession.Status.RINGING,
                                                               CallSession.Status.IN_PROGRESS]).update(
        status=CallSession.Status.COMPLETED)
    if ended:  # once per call: the call.ended webhook event (committed with the end), then the analysis
        session = CallSession.objects.select_related("agent_version").get(pk=call_session_id)
        webhook_services.call_event_record(session=session, type=EventType.CALL_ENDED)
        from calls.services.analysis import call_session_ended_analysis

        call_session_ended_analysis(call_session_id=call_session_id)


# ---------------------------------------------------------------------------
# Gateway side (blocking: run in a thread)


def redirect_to_dial(*, ctx: CallContext, action: HandoverActionSpec, handover_id: int) -> str:
    """Redirect the live call to the Dial. Returns the outcome so far: pending, caller-gone or not-redirected."""
    twiml = dial_twiml(destination=action.destination,
                       action_url=dial_result_url(base=context_callback_base(ctx), handover_id=handover_id))
    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        if call_is_gone(exc):
            logger.info("handover skipped: the caller already hung up",
                        extra={"call_sid": ctx.call_sid, "action": action.name})
            return CallHandover.Outcome.CALLER_GONE
        logger.warning("handover redirect failed", extra={"call_sid": ctx.call_sid, "action": action.name,
                                                          "code": exc.code, "transient": exc.transient})
        return CallHandover.Outcome.NOT_REDIRECTED
    logger.info("handover: call redirected to dial", extra={"call_sid": ctx.call_sid, "action": action.name,
                                                            "handover_id": handover_id})
    return CallHandover.Outcome.PENDING


def call_hangup(*, ctx: CallContext) -> bool:
    """End the call. True when it ended now, False when the caller had already gone (not an error)."""
    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, status="completed")
    except errors.TwilioError as exc:
        if call_is_gone(exc):
            return False
        raise
    return True


def fallback_twiml_for_context(*, ctx: CallContext, message: str = AGENT_FAILED_MESSAGE) -> str:
    """What the call hears when the agent itself failed: apology, then the fallback action or hang-up.

    "agent" as fallback means nothing here (the agent is what failed): it hangs up.
    """
    action = ctx.fallback_action()
    if action is not None and ctx.call_session_id:
        handover = handover_record(call_session_id=ctx.call_session_id, action=action,
                                   transport=ctx.transport, detail="fallback after agent failure")
        return dial_twiml(destination=action.destination, say=message, language=ctx.language,
                          action_url=dial_result_url(base=context_callback_base(ctx), handover_id=handover.pk))
    response = VoiceResponse()
    _say(response, message, ctx.language)
    response.hangup()
    return str(response)


def redirect_after_failure(*, ctx: CallContext, twiml: str) -> bool:
    """Blocking. Send the apology + fallback TwiML to the live call; False if the caller already left."""
    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        if call_is_gone(exc):
            return False
        logger.error("could not redirect a call after an agent failure",
                     extra={"call_sid": ctx.call_sid, "code": exc.code})
        return False
    return True


# ---------------------------------------------------------------------------
# Callbacks Twilio makes (views in connectors/webhooks.py; the Studio handover view may delegate here)


def _fallback_after_dial(*, handover: CallHandover) -> tuple[str, str]:
    """(fallback label, TwiML) after a failed dial: message, then another action, the agent, or hang-up."""
    from agents.models import HandoverAction
    from calls.services.admission import stream_token_issue, stream_twiml

    session = handover.call_session
    variables = {}
    if session.environment_id:
        variables = dict(session.environment.variables.values_list("name", "value"))
    choice = (variables.get(FALLBACK_VARIABLE) or "hangup").strip().removeprefix("action:")
    version = session.agent_version
    language = version.language if version else ""
    base = session_callback_base(session)
    if choice == "agent" and version is not None:
        token = stream_token_issue(call_session=session)
        # The spoken message, then the call back to the agent (a new stream of the same session).
        return "agent", stream_twiml(version=version, token=token, action_url=relay_action_url(session),
                                     say=DIAL_FAILED_MESSAGE, language=language)
    if choice not in ("hangup", "agent", "") and version is not None and choice != handover.action_name:
        action = HandoverAction.objects.filter(version=version, name=choice).first()
        if action is not None:
            spec = HandoverActionSpec(action.name, action.destination, action.description)
            nxt = handover_record(call_session_id=session.pk, action=spec, transport=handover.transport,
                                  detail=f"fallback after {handover.action_name}")
            return f"action:{action.name}", dial_twiml(
                destination=action.destination, say=DIAL_FAILED_MESSAGE, language=language,
                action_url=dial_result_url(base=base, handover_id=nxt.pk))
    response = VoiceResponse()
    _say(response, DIAL_FAILED_MESSAGE, language)
    response.hangup()
    return "hangup", str(response)


def dial_result_record(*, connector=None, call_session=None, handover_id, params: dict) -> str:
    """The Dial's action callback: record the outcome once, answer with what happens next. The handover must be
    one of the connector's calls (an incoming call) or of `call_session` (a call an agent placed).

    Idempotent: a retried (or duplicated) callback gets the stored answer and writes nothing.
    """
    try:
        handover_id = int(handover_id)
    except (TypeError, ValueError):
        return _hangup()
    with transaction.atomic():
        handover = (CallHandover.objects.select_for_update(of=("self",))
                    .select_related("call_session", "call_session__connector", "call_session__agent_version",
                                    "call_session__environment")
                    .filter(pk=handover_id, **owned_by(connector=connector, call_session=call_session)).first())
        if handover is None:
            logger.warning("dial result for an unknown handover", extra={"handover_id": handover_id})
            return _hangup()
        if handover.answer_twiml:
            return handover.answer_twiml
        status = (params.get("DialCallStatus") or "").strip().lower()
        outcome = DIAL_OUTCOMES.get(status, CallHandover.Outcome.FAILED)
        if outcome == CallHandover.Outcome.ANSWERED:
            fallback, twiml = "", _hangup()
        else:
            fallback, twiml = _fallback_after_dial(handover=handover)
        handover.outcome = outcome
        handover.outcome_at = timezone.now()
        handover.dial_call_sid = (params.get("DialCallSid") or "")[:64]
        try:
            handover.dial_duration = int(params.get("DialCallDuration") or 0) or None
        except ValueError:
            handover.dial_duration = None
        handover.fallback = fallback
        handover.answer_twiml = twiml
        handover.detail = status[:255]
        handover.save(update_fields=["outcome", "outcome_at", "dial_call_sid", "dial_duration", "fallback",
                                     "answer_twiml", "detail"])
        _handover_event(handover=handover, type=EventType.HANDOVER_COMPLETED, session=handover.call_session)
    logger.info("handover outcome", extra={"handover_id": handover.pk, "outcome": outcome, "fallback": fallback})
    return twiml


def _hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def fallback_hangup_twiml() -> str:
    response = VoiceResponse()
    response.say(DIAL_FAILED_MESSAGE)
    response.hangup()
    return str(response)


def relay_handover_twiml(*, connector=None, call_session=None, params: dict) -> str:
    """The `<Connect action>` answer after ConversationRelay's `end`: Dial the recorded handover, or the
    apology + fallback when the agent failed, or hang up when the conversation simply ended. The call is the
    connector's (by CallSid) or `call_session` (a call an agent placed)."""
    from calls.models import CallSession

    try:
        data = json.loads(params.get("HandoffData") or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    scope = {"connector": connector} if connector is not None else {"pk": getattr(call_session, "pk", None)}
    session = (CallSession.objects.select_related("connector", "agent_version", "environment")
               .filter(call_sid=params.get("CallSid", ""), **scope).first())
    if session is None:
        return _hangup()
    base = session_callback_base(session)
    reason = data.get("reason")
    handover = None
    if data.get("handover_id"):
        handover = CallHandover.objects.filter(pk=data.get("handover_id"), call_session=session).first()
    elif data.get("action") and session.agent_version_id:
        # Handoff data that names an action without a recorded handover (e.g. sent by another relay client):
        # record it here, once per call and action, so retries dial the same leg.
        handover = CallHandover.objects.filter(call_session=session, action_name=str(data["action"])).first()
        if handover is None:
            from agents.models import HandoverAction

            action = HandoverAction.objects.filter(version_id=session.agent_version_id,
                                                   name=str(data["action"])).first()
            if action is not None:
                handover = handover_record(
                    call_session_id=session.pk, transport="conversation_relay",
                    action=HandoverActionSpec(name=action.name, destination=action.destination))
    if handover is not None and reason in (None, "handover") and handover.kind == "agent" and handover.answer_twiml:
        return handover.answer_twiml  # another agent: its new stream (calls.services.transfers.agent_handoff)
    if handover is not None and reason in (None, "handover") and handover.kind == "reps":
        from calls.services import rep_transfers

        return rep_transfers.reps_relay_hold_twiml(handover=handover)
    if handover is not None and reason in (None, "handover") and handover.kind == "warm":
        from calls.services import transfers

        return transfers.relay_hold_twiml(handover=handover)
    if handover is not None and reason in (None, "handover"):
        return dial_twiml(destination=handover.destination,
                          action_url=dial_result_url(base=base, handover_id=handover.pk))
    if reason == "error":
        from calls.engine.context import context_for_call_session

        ctx = context_for_call_session(session)
        # Retried callback: reuse the fallback handover recorded the first time.
        existing = CallHandover.objects.filter(call_session=session, detail="fallback after agent failure").first()
        if existing is not None:
            return dial_twiml(destination=existing.destination, say=AGENT_FAILED_MESSAGE, language=ctx.language,
                              action_url=dial_result_url(base=base, handover_id=existing.pk))
        return fallback_twiml_for_context(ctx=ctx)
    return _hangup()


RESULT_STORE_CHARS = 4000


def action_run_record(*, call_session_id: int, run: dict) -> None:
    """Store one API action run (from the call's side task). `run` holds no secrets (see calls.engine)."""
    from datetime import datetime
    from datetime import timezone as dt_timezone

    from calls.models import CallActionRun

    CallActionRun.objects.create(
        call_session_id=call_session_id, name=str(run["name"])[:64], parameters=run.get("parameters") or {},
        ok=bool(run.get("ok")), status_code=run.get("status_code"), duration_ms=int(run.get("duration_ms") or 0),
        result=str(run.get("result") or "")[:RESULT_STORE_CHARS],
        started_at=datetime.fromtimestamp(run["started"], tz=dt_timezone.utc),
    )
