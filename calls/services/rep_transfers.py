"""Warm transfer to the dialer's reps (handover kind "reps"): the caller holds, the online reps' browsers ring.

Built on the warm transfer's conference (calls.services.transfers: the hold TwiML, the brief, the events):

1. `reps_handover_record`: one attempt per rep to ring: the action's team (`HandoverAction.reps`, user ids;
   empty = every member) among the members online in the browser dialer (`telephony.presence`), each
   `{destination: "client:<identity>", user_id, rep, call_sid, outcome, at}`; `handover.started` with the kind.
2. `reps_transfer_start` (Media Streams, from the engine in a thread) / `reps_relay_hold_twiml` (ConversationRelay's
   `<Connect action>`): the caller is put on hold in the conference, then every rep is rung at once
   (`conference_participant_create` to `client:<identity>`, status callbacks to `rep-transfer-status`).
3. The rep's dialer shows the ringing card (`offer_for`: the caller, the brief, the analysis fields and the
   transcript so far). Accept (`offer_accept`) claims the caller under the handover's row lock: the first rep
   wins, the other reps' legs are hung up (`taken-by-other`), the dialer records the rep's call (an ordinary dialer
   call linked to the agent call: `telephony.hooks.rep_call_hooks`), and the browser then answers its leg, which
   joins the conference with `startConferenceOnEnter`: caller and rep talk, the agent is gone.
   Decline (`offer_decline`) or a leg ending unanswered (no answer, busy, failed) closes that rep's attempt.
4. Every attempt closed and nobody took the call: as a declined warm transfer, the agent comes back to the caller
   and offers to take a message (`transfers._back_to_agent`), `handover.completed` with `outcome=not-taken`.

The live view follows it (`live.publish` kind "transfer": waiting, ringing whom, taken by whom, not taken).
"""
from __future__ import annotations

import logging

from django.db import transaction

from calls.engine.context import CallContext, HandoverActionSpec
from calls.models import CallHandover
from calls.services import transfers
from telephony import errors, hooks, presence, twilio_gateway
from webhooks.models import EventType

logger = logging.getLogger(__name__)

KIND = "reps"
Attempt = CallHandover.AttemptOutcome
TAKEN_BY_OTHER = "taken-by-other"
FINAL = transfers.FINAL | {TAKEN_BY_OTHER}
RING_TIMEOUT = 25
MAX_REPS = 10
TRANSCRIPT_TURNS = 12
LEG_OUTCOMES = {"busy": Attempt.DECLINED, "no-answer": Attempt.NO_ANSWER, "failed": Attempt.FAILED,
                "canceled": Attempt.NO_ANSWER, "completed": Attempt.NO_ANSWER}
NOBODY_ONLINE = "no rep online"


# ---------------------------------------------------------------------------
# Who rings


def reps_to_ring(*, workspace_id: int, team: list[int] | None = None) -> list[tuple[int, str]]:
    """(user id, name) of the members online in the browser dialer, the team's only when one is given."""
    from workspaces.models import Membership

    members = Membership.objects.filter(workspace_id=workspace_id).select_related("user").order_by("user_id")
    if team:
        members = members.filter(user_id__in=list(team))
    names = {m.user_id: (m.user.get_full_name() or m.user.get_username()) for m in members}
    online = presence.online_user_ids(workspace_id=workspace_id, user_ids=list(names))[:MAX_REPS]
    return [(uid, names[uid]) for uid in online]


def _team_of(session, action_name: str) -> list[int]:
    """The reps to ring: a campaign's own (`metadata["reps"]`, set by campaigns when it places the call: its
    qualified contacts go to its reps), else the action's team; empty: every member."""
    from agents.models import HandoverAction

    metadata = session.metadata if isinstance(session.metadata, dict) else {}
    if metadata.get("reps"):
        return [r for r in metadata["reps"] if isinstance(r, int)]
    if not session.agent_version_id:
        return []
    reps = (HandoverAction.objects.filter(version_id=session.agent_version_id, name=action_name)
            .values_list("reps", flat=True).first())
    return [r for r in (reps or []) if isinstance(r, int)]


@transaction.atomic
def reps_handover_record(*, call_session_id: int, action: HandoverActionSpec, transport: str) -> CallHandover:
    """The handover row with one waiting attempt per online rep (of the team); `handover.started` with the kind."""
    from calls.models import CallSession

    session = CallSession.objects.get(pk=call_session_id)
    reps = reps_to_ring(workspace_id=session.workspace_id, team=_team_of(session, action.name))
    handover = CallHandover.objects.create(
        call_session_id=call_session_id, action_name=action.name, destination="dialer reps", transport=transport,
        kind=KIND, attempts=[{"destination": "client:" + presence.voice_identity(
            workspace_id=session.workspace_id, user_id=uid), "user_id": uid, "rep": name[:80], "call_sid": "",
            "outcome": "", "at": None} for uid, name in reps])
    handover = CallHandover.objects.select_related("call_session__agent_version").get(pk=handover.pk)
    transfers._emit(handover, EventType.HANDOVER_STARTED)
    return handover


# ---------------------------------------------------------------------------
# Live view


def _live(handover: CallHandover, state: str, text: str) -> None:
    """The live view's row of this call shows the transfer's progress (never raises)."""
    from asgiref.sync import async_to_sync

    from calls.engine import live

    session = handover.call_session
    event = {"kind": "transfer", "call_id": session.pk, "handover_id": handover.pk, "state": state, "text": text,
             "reps": [{"rep": a.get("rep", ""), "outcome": a.get("outcome") or "waiting"} for a in handover.attempts],
             "call": {"id": session.pk, "from": session.from_number, "to": session.to_number,
                      "direction": session.direction,
                      "started_at": session.started_at.isoformat() if session.started_at else ""}}
    try:
        async_to_sync(live.publish)(session.workspace_id, event)
    except Exception:  # noqa: BLE001 - monitoring never breaks a transfer
        logger.warning("rep transfer: could not publish to the live view", extra={"handover_id": handover.pk})


def progress_text(handover: CallHandover) -> tuple[str, str]:
    """(state, words) for the live view and the call page: waiting, ringing whom, taken by whom, not taken."""
    if handover.outcome == CallHandover.Outcome.ANSWERED:
        return "taken", f"taken by {handover.detail.removeprefix('taken by ') or 'a rep'}"
    if handover.outcome == CallHandover.Outcome.NOT_TAKEN:
        return "declined", "not taken by the reps: back to the agent"
    if handover.outcome != CallHandover.Outcome.PENDING:
        return "ended", handover.get_outcome_display().lower()
    ringing = [a.get("rep") or a["destination"] for a in handover.attempts
               if a["outcome"] in ("dialling", Attempt.RINGING)]
    if ringing:
        return "ringing", "caller waiting; ringing " + ", ".join(ringing)
    return "waiting", "caller waiting"


def _publish(handover: CallHandover) -> None:
    state, text = progress_text(handover)
    transaction.on_commit(lambda: _live(handover, state, text))


# ---------------------------------------------------------------------------
# Ringing the reps (blocking: Twilio's REST API)


def reps_transfer_start(*, ctx: CallContext, handover_id: int) -> str:
    """Blocking. Put the caller on hold in the conference and ring every rep; the outcome as `redirect_to_dial`'s."""
    from calls.services.handovers import call_is_gone, context_callback_base

    handover = CallHandover.objects.select_related("call_session").get(pk=handover_id)
    twiml = transfers.hold_twiml(handover_id=handover_id, base=context_callback_base(ctx),
                                 say=transfers.hold_message(handover), language=ctx.language)
    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        return CallHandover.Outcome.CALLER_GONE if call_is_gone(exc) else CallHandover.Outcome.NOT_REDIRECTED
    ring_reps(creds=ctx.creds, handover_id=handover_id)
    return CallHandover.Outcome.PENDING


def reps_relay_hold_twiml(*, handover: CallHandover) -> str:
    """ConversationRelay: the `<Connect action>` answer (the caller holds); the reps are rung once it is committed.
    A retried callback (reps already rung) only holds."""
    language = handover.call_session.agent_version.language if handover.call_session.agent_version_id else ""
    if handover.outcome == CallHandover.Outcome.PENDING and not any(a["outcome"] for a in handover.attempts):
        creds = transfers._creds_for(handover)
        transaction.on_commit(lambda: ring_reps(creds=creds, handover_id=handover.pk))
    return transfers.hold_twiml(handover_id=handover.pk, base=transfers._base(handover.call_session),
                                say=transfers.hold_message(handover), language=language)


def ring_reps(*, creds, handover_id: int) -> None:
    """Ring every waiting rep into the conference at once; nobody could be rung: the agent takes the caller back."""
    with transaction.atomic():
        handover = transfers._locked(handover_id)
        if handover is None or handover.outcome != CallHandover.Outcome.PENDING:
            return
        session = handover.call_session
        base = transfers._base(session)
        for index, attempt in enumerate(handover.attempts):
            if attempt["outcome"]:
                continue
            try:
                participant = twilio_gateway.conference_participant_create(
                    creds=creds, conference=transfers.conference_name(handover.pk),
                    from_=transfers._our_number(session), to=attempt["destination"], label=f"rep-{index}",
                    timeout=RING_TIMEOUT, start_conference_on_enter=True, end_conference_on_exit=True,
                    status_callback=transfers._url(base, "rep-transfer-status", handover.pk, index))
            except errors.TwilioError as exc:
                logger.warning("rep transfer: could not ring a rep",
                               extra={"handover_id": handover.pk, "attempt": index, "code": exc.code})
                transfers._attempt_set(handover, index, Attempt.FAILED, detail=f"twilio {exc.code or exc.status}")
                continue
            transfers._attempt_set(handover, index, "dialling", call_sid=participant.call_sid)
        _publish(handover)
        _settle(creds=creds, handover=handover)


def _settle(*, creds, handover: CallHandover) -> None:
    """Under the lock: every attempt closed and nobody took the call → the agent comes back to the caller."""
    if handover.outcome != CallHandover.Outcome.PENDING:
        return
    if all(a["outcome"] in FINAL for a in handover.attempts):
        if not handover.attempts:
            _transcript(handover, f"Transfer to the dialer reps ({handover.action_name}): {NOBODY_ONLINE}")
        language = handover.call_session.agent_version.language if handover.call_session.agent_version_id else ""
        transfers._back_to_agent(creds=creds, handover=handover, language=language)
        _publish(handover)


def _transcript(handover: CallHandover, text: str) -> None:
    transfers._transcript_line(handover, text)


def _hang_up_others(*, creds, call_sids: list[str]) -> None:
    for call_sid in call_sids:
        transfers._hang_up_leg(creds=creds, call_sid=call_sid)


# ---------------------------------------------------------------------------
# The rep's browser: the ringing card, accept, decline (views in calls/views.py)


def _offer_locate(*, user_id: int, call_sid: str):
    """(handover, attempt index) of this rep's ringing leg, else None."""
    if not call_sid:
        return None
    qs = CallHandover.objects.filter(kind=KIND, attempts__icontains=call_sid)
    for handover in qs.select_related("call_session__agent_version__agent").order_by("-pk")[:5]:
        for index, attempt in enumerate(handover.attempts):
            if attempt.get("user_id") == user_id and attempt.get("call_sid") == call_sid:
                return handover, index
    return None


def offer_for(*, user_id: int, workspace_id: int, call_sid: str) -> dict | None:
    """The ringing card of the transfer ringing this rep on leg `call_sid`: None when it is not one."""
    from calls.models import CallAnalysis, CallTurn

    found = _offer_locate(user_id=user_id, call_sid=call_sid)
    if found is None:
        return None
    handover, index = found
    session = handover.call_session
    if session.workspace_id != workspace_id:
        return None
    attempt = handover.attempts[index]
    analysis = CallAnalysis.objects.filter(call_session_id=session.pk).values_list("fields", flat=True).first() or {}
    turns = list(CallTurn.objects.filter(call_session_id=session.pk).exclude(text="").order_by("-seq")
                 .values_list("role", "text")[:TRANSCRIPT_TURNS])[::-1]
    waiting = handover.outcome == CallHandover.Outcome.PENDING and attempt["outcome"] not in FINAL
    taken_by = handover.detail.removeprefix("taken by ") if handover.outcome == CallHandover.Outcome.ANSWERED else ""
    return {
        "handover_id": handover.pk, "attempt": index, "call_id": session.pk,
        "caller": transfers._other_party(session), "caller_name": (session.variables or {}).get("name", "")
        or (session.variables or {}).get("caller_name", ""),
        "agent": session.agent_version.agent.name if session.agent_version_id else "",
        "action": handover.action_name, "brief": transfers.brief_text(call_session_id=session.pk),
        "fields": {k: v for k, v in analysis.items() if v not in ("", None, [])} if isinstance(analysis, dict) else {},
        "transcript": [{"role": role, "text": text} for role, text in turns],
        # A campaign's contact (campaigns places the call with the contact's fields as its variables).
        "contact": dict(session.variables or {}) if isinstance(session.metadata, dict)
        and session.metadata.get("campaign") and isinstance(session.variables, dict) else {},
        "state": "ringing" if waiting else ("taken" if attempt["outcome"] == Attempt.TAKEN else "gone"),
        "taken_by": taken_by,
    }


def offer_accept(*, user_id: int, workspace_id: int, handover_id: int, attempt: int) -> tuple[bool, str]:
    """The rep takes the caller, if nobody did first: (True, "") then answer the leg; else (False, why)."""
    hang_up: list[str] = []
    with transaction.atomic():
        handover = transfers._locked(handover_id)
        if (handover is None or handover.kind != KIND or handover.call_session.workspace_id != workspace_id
                or attempt < 0 or attempt >= len(handover.attempts)
                or handover.attempts[attempt].get("user_id") != user_id):
            return False, "This transfer is not ringing you."
        current = handover.attempts[attempt]["outcome"]
        if current == Attempt.TAKEN:
            return True, ""  # a retried click
        if handover.outcome == CallHandover.Outcome.ANSWERED:
            return False, f"{handover.detail.removeprefix('taken by ') or 'Another rep'} took the call."
        if handover.outcome != CallHandover.Outcome.PENDING or current in FINAL:
            return False, "The caller is no longer waiting."
        taken = transfers._attempt_set(handover, attempt, Attempt.TAKEN)
        for index, other in enumerate(handover.attempts):
            if index != attempt and other["outcome"] not in FINAL:
                hang_up.append(other["call_sid"])
                transfers._attempt_set(handover, index, TAKEN_BY_OTHER)
        rep = taken.get("rep") or taken["destination"]
        handover.destination = taken["destination"][:20]
        handover.dial_call_sid = taken["call_sid"][:64]
        handover.save(update_fields=["destination", "dial_call_sid"])
        _transcript(handover, f"Transfer to the dialer reps ({handover.action_name}): {rep} took the call")
        transfers._finish(handover, CallHandover.Outcome.ANSWERED, detail=f"taken by {rep}")
        session = handover.call_session
        hooks.rep_call_hooks.run(event="taken", workspace_id=session.workspace_id, call_sid=taken["call_sid"],
                                 user_id=user_id, from_number=transfers._other_party(session),
                                 to_number=taken["destination"], agent_call_id=session.pk)
        _publish(handover)
        creds = transfers._creds_for(handover)
    if hang_up:
        _hang_up_others(creds=creds, call_sids=[sid for sid in hang_up if sid])
    return True, ""


def offer_decline(*, user_id: int, workspace_id: int, handover_id: int, attempt: int) -> bool:
    """The rep declines: their attempt is closed (their leg ends when the browser rejects it)."""
    with transaction.atomic():
        handover = transfers._locked(handover_id)
        if (handover is None or handover.kind != KIND or handover.call_session.workspace_id != workspace_id
                or attempt < 0 or attempt >= len(handover.attempts)
                or handover.attempts[attempt].get("user_id") != user_id
                or handover.attempts[attempt]["outcome"] in FINAL):
            return False
        transfers._attempt_set(handover, attempt, Attempt.DECLINED)
        creds = transfers._creds_for(handover)
        _publish(handover)
        _settle(creds=creds, handover=handover)
    return True


# ---------------------------------------------------------------------------
# Twilio's status callbacks of a rep's leg (connectors/webhooks.py `rep-transfer-status`)


def rep_status_record(*, connector=None, call_session=None, handover_id, attempt, params: dict) -> None:
    """A rep's leg: ringing, answered, or ended (unanswered: the attempt closes; taken: the rep's call ended)."""
    try:
        handover_id, index = int(handover_id), int(attempt)
    except (TypeError, ValueError):
        return
    status = (params.get("CallStatus") or "").strip().lower()
    hang_up = ""
    with transaction.atomic():
        handover = transfers._locked(handover_id)
        if (handover is None or handover.kind != KIND or index >= len(handover.attempts)
                or (connector is not None and handover.call_session.connector_id != connector.pk)
                or (connector is None and handover.call_session_id != getattr(call_session, "pk", None))):
            return
        attempt = handover.attempts[index]
        creds = transfers._creds_for(handover)
        session = handover.call_session
        if attempt["outcome"] == Attempt.TAKEN:
            if status in ("in-progress", "answered", "completed", "busy", "no-answer", "failed", "canceled"):
                duration = params.get("CallDuration")
                hooks.rep_call_hooks.run(
                    event="status", workspace_id=session.workspace_id, call_sid=attempt["call_sid"], user_id=None,
                    status="in-progress" if status == "answered" else status, agent_call_id=session.pk,
                    duration=int(duration) if str(duration or "").isdigit() else None)
            if status in ("in-progress", "answered") and not attempt.get("answered"):
                attempt["answered"] = True
                handover.save(update_fields=["attempts"])
            elif status in ("completed", "busy", "no-answer", "failed", "canceled") and not attempt.get("answered"):
                # Accepted on the card, but the leg never connected (the browser went away): the caller is not
                # left alone in the conference: the agent takes them back.
                transfers._attempt_set(handover, index, Attempt.FAILED, detail="accepted, never connected")
                handover.outcome, handover.outcome_at, handover.detail = CallHandover.Outcome.PENDING, None, ""
                handover.save(update_fields=["outcome", "outcome_at", "detail"])
                _settle(creds=creds, handover=handover)
            elif status in ("completed", "busy", "no-answer", "failed", "canceled"):
                transaction.on_commit(lambda: _live(handover, "ended", "the rep's call ended"))
            return
        if attempt["outcome"] in FINAL:
            if status in ("in-progress", "answered"):  # answered after another rep took it: that leg goes
                hang_up = attempt["call_sid"]
        elif status == "ringing":
            transfers._attempt_set(handover, index, Attempt.RINGING)
            _publish(handover)
        elif status in ("in-progress", "answered"):
            # Answered without the card's Accept (e.g. another client): the first to answer takes the caller.
            pass
        elif status in LEG_OUTCOMES:
            transfers._attempt_set(handover, index, LEG_OUTCOMES[status])
            _publish(handover)
            _settle(creds=creds, handover=handover)
    if hang_up:
        transfers._hang_up_leg(creds=creds, call_sid=hang_up)
    elif status in ("in-progress", "answered") and attempt["outcome"] not in FINAL:
        user_id = attempt.get("user_id")
        ok, _ = offer_accept(user_id=user_id, workspace_id=session.workspace_id, handover_id=handover_id,
                             attempt=index)
        if not ok:
            transfers._hang_up_leg(creds=creds, call_sid=attempt["call_sid"])


def handover_ended(*, handover_id: int) -> None:
    """The caller's conference ended (calls.services.transfers.caller_result_record): the live view's row goes."""
    handover = CallHandover.objects.select_related("call_session").filter(pk=handover_id, kind=KIND).first()
    if handover is not None:
        _live(handover, "ended", "call ended")
