"""Coaching on reps' dialer calls: a supervisor (a workspace admin) listens, whispers to the rep only, or barges in.

Twilio coaches only inside a conference, and a dialer call is a `<Dial><Number>` / `<Dial><Client>` bridge
(dialer/webhooks.py). The call is moved into a conference when the first supervisor joins, never before: every
other call keeps its bridge, its ringing, caller ID, leg callbacks and outcome exactly as they were. The move, as
Twilio allows it without dropping anyone:

1. the dialled (child) leg is redirected (`Calls/<leg>.json Twiml=<Dial><Conference>`): for an outbound call the
   person's leg, for an inbound one the rep's browser leg;
2. that ends the parent's `<Dial>`, whose `action` (`voice_dial_done`) answers, for a call with `conference_name`
   set, the same `<Dial><Conference>` instead of recording the outcome; the call's end then comes from its status
   callback, as for any call.

Both legs end the conference on exit. The supervisor's browser places its own Voice SDK call with the parameter
`Coaching=<id>`; the TwiML app's voice URL answers it with `<Dial><Conference coach=<rep's CallSid>>` (muted when
listening). Switching modes is `conference_participant_update` (Muted, Coaching, CallSidToCoach) through the one
gateway. The conference's participant callbacks (`voice_conference_status`) tell who joined and left: the rep's
dialer shows who is listening or whispering from `coaching_for_rep`. Every start and change is audited.

Writes are keyword-only `coaching_<verb>`, transactional; the reads are at the bottom.
"""
from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from twilio.twiml.voice_response import VoiceResponse

from dialer.models import Call, CallCoaching, CallLeg
from dialer.tokens import identity_parse
from telephony import errors, twilio_gateway
from telephony.public_urls import absolute_url
from telephony.selectors import connection_get
from workspaces.models import AuditEntry, Membership
from workspaces.services import audit_record

CONFERENCE_EVENTS = "start end join leave mute modify"
LIVE_FOR = timedelta(hours=4)  # a call "in progress" for longer lost its final callback


class CoachingRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def can_coach(*, workspace, user) -> bool:
    """Supervisors are the workspace's admins (the roles are admin and member)."""
    return Membership.objects.filter(workspace=workspace, user=user, role=Membership.Role.ADMIN).exists()


def _audit(*, workspace, supervisor, call: Call, mode: str, change: bool) -> None:
    action = AuditEntry.Action.CALL_LISTENED if mode == CallCoaching.Mode.LISTEN else AuditEntry.Action.CALL_INTERVENED
    audit_record(workspace=workspace, actor=supervisor, action=action, target=call,
                 details={"product": "dialer", "mode": mode, "change": change,
                          "rep": call.user.get_username() if call.user else ""})


def _conference(dial, *, name: str, workspace_id: int, **attrs) -> None:
    dial.conference(name, beep=False, status_callback=absolute_url("dialer:conference_status", workspace_id),
                    status_callback_method="POST", status_callback_event=CONFERENCE_EVENTS, **attrs)


def conference_twiml(*, call: Call) -> str:
    """A rep's or a customer's leg in the call's conference (either one leaving ends it)."""
    response = VoiceResponse()
    _conference(response.dial(), name=call.conference_name, workspace_id=call.workspace_id,
                start_conference_on_enter=True, end_conference_on_exit=True)
    return str(response)


def _legs(call: Call) -> tuple[CallLeg | None, str]:
    """(the leg to redirect into the conference, the rep's CallSid there)."""
    kind = CallLeg.Kind.NUMBER if call.direction == Call.Direction.OUTBOUND else CallLeg.Kind.CLIENT
    leg = call.legs.filter(kind=kind, status=Call.Status.IN_PROGRESS).order_by("-started_at", "-id").first()
    if leg is None:
        return None, ""
    return leg, (call.sid if call.direction == Call.Direction.OUTBOUND else leg.sid)


def coaching_start(*, workspace, supervisor, call_id: int, mode: str) -> CallCoaching:
    """A supervisor joins a live call in `mode`: the call moves into its conference first (once)."""
    if mode not in CallCoaching.Mode.values:
        raise CoachingRefused("Choose listen, whisper or barge.")
    if not can_coach(workspace=workspace, user=supervisor):
        raise CoachingRefused("Only a workspace admin can listen to reps' calls.")
    connection = connection_get(workspace=workspace)
    if connection is None:
        raise CoachingRefused("Connect your phone system first.")
    with transaction.atomic():
        call = (Call.objects.select_for_update(of=("self",)).select_related("user")
                .filter(workspace=workspace, pk=call_id).first())
        if call is None or call.is_final or call.answered_at is None or call.ended_at is not None:
            raise CoachingRefused("That call is not live any more.")
        if call.user_id == supervisor.pk:
            raise CoachingRefused("That is your own call.")
        leg, rep_sid = _legs(call)
        if leg is None:
            raise CoachingRefused("That call is not connected yet.")
        move = not call.conference_name
        if move:
            call.conference_name = f"dialer-{call.sid}"
            call.save(update_fields=["conference_name", "updated_at"])
        coaching = CallCoaching.objects.create(workspace=workspace, call=call, supervisor=supervisor, mode=mode,
                                               coached_sid=rep_sid)
        _audit(workspace=workspace, supervisor=supervisor, call=call, mode=mode, change=False)
    if move:
        try:
            twilio_gateway.call_update(creds=connection.credentials(), call_sid=leg.sid,
                                       twiml=conference_twiml(call=call))
        except errors.TwilioError as exc:
            Call.objects.filter(pk=call.pk).update(conference_name="")
            CallCoaching.objects.filter(pk=coaching.pk).update(ended_at=timezone.now())
            raise CoachingRefused(f"Twilio could not move the call into a conference: {exc}") from None
    return coaching


def coaching_answer(*, workspace, coaching_id: str, from_identity: str, call_sid: str) -> str | None:
    """The supervisor's browser call (TwiML app, `Coaching=<id>`): its conference TwiML, or None (refused)."""
    parsed = identity_parse(from_identity)
    if parsed is None or parsed[0] != workspace.pk or not str(coaching_id).isdigit():
        return None
    with transaction.atomic():
        coaching = (CallCoaching.objects.select_for_update().select_related("call")
                    .filter(workspace=workspace, pk=int(coaching_id), supervisor_id=parsed[1],
                            ended_at__isnull=True).first())
        if coaching is None or (coaching.participant_sid and coaching.participant_sid != call_sid):
            return None
        coaching.participant_sid = call_sid[:34]
        coaching.save(update_fields=["participant_sid"])
        _coaching_call_link(workspace=workspace, call_sid=call_sid[:34], supervisor_id=parsed[1],
                            from_identity=from_identity, coached=coaching.call)
    response = VoiceResponse()
    coach = coaching.coached_sid if coaching.mode != CallCoaching.Mode.BARGE else None
    _conference(response.dial(), name=coaching.call.conference_name, workspace_id=workspace.pk,
                start_conference_on_enter=False, end_conference_on_exit=False,
                muted=coaching.mode == CallCoaching.Mode.LISTEN, coach=coach, participant_label=f"coach-{coaching.pk}")
    return str(response)


def _coaching_call_link(*, workspace, call_sid: str, supervisor_id: int, from_identity: str, coached: Call) -> None:
    """The supervisor's own browser call is recorded as a coaching call of `coached` (whichever of this webhook and
    its status callback comes first creates the row), so it stays out of the call log and the reps' analytics."""
    if Call.objects.filter(workspace=workspace, sid=call_sid).update(coached_call=coached):
        return
    try:
        with transaction.atomic():
            Call.objects.create(workspace=workspace, sid=call_sid, direction=Call.Direction.OUTBOUND,
                                user_id=supervisor_id, from_number=from_identity[:64], coached_call=coached)
    except IntegrityError:
        Call.objects.filter(workspace=workspace, sid=call_sid).update(coached_call=coached)


def coaching_mode_set(*, workspace, supervisor, coaching_id: int, mode: str) -> CallCoaching:
    """Listen ↔ whisper ↔ barge for a supervisor already in the conference."""
    if mode not in CallCoaching.Mode.values:
        raise CoachingRefused("Choose listen, whisper or barge.")
    coaching = (CallCoaching.objects.select_related("call", "call__user")
                .filter(workspace=workspace, pk=coaching_id, supervisor=supervisor, ended_at__isnull=True).first())
    if coaching is None:
        raise CoachingRefused("You are not on that call any more.")
    if not (coaching.participant_sid and coaching.call.conference_sid):
        raise CoachingRefused("Still joining the call: try again in a moment.")
    connection = connection_get(workspace=workspace)
    try:
        twilio_gateway.conference_participant_update(
            creds=connection.credentials(), conference_sid=coaching.call.conference_sid,
            call_sid=coaching.participant_sid, muted=mode == CallCoaching.Mode.LISTEN,
            coaching=mode != CallCoaching.Mode.BARGE, call_sid_to_coach=coaching.coached_sid)
    except errors.TwilioError as exc:
        raise CoachingRefused(f"Twilio did not change the mode: {exc}") from None
    with transaction.atomic():
        CallCoaching.objects.filter(pk=coaching.pk).update(mode=mode)
        coaching.mode = mode
        _audit(workspace=workspace, supervisor=supervisor, call=coaching.call, mode=mode, change=True)
    return coaching


def moved_call_twiml(*, workspace, call_sid: str, dial_status: str) -> str | None:
    """`<Dial action>` of a call whose other leg was just redirected into its conference: the parent joins it too
    (and the dial outcome is not the call's: it goes on). None for every other call."""
    if dial_status != Call.Status.COMPLETED:
        return None
    call = Call.objects.filter(workspace=workspace, sid=call_sid).exclude(conference_name="").first()
    if call is None or call.is_final:
        return None
    return conference_twiml(call=call)


def coaching_conference_event(*, workspace, conference_sid: str, friendly_name: str, call_sid: str,
                              event: str) -> None:
    """A participant callback of a call's conference: its SID, who joined and left."""
    now = timezone.now()
    with transaction.atomic():
        if friendly_name.startswith("dialer-"):
            Call.objects.filter(workspace=workspace, conference_name=friendly_name, conference_sid="").update(
                conference_sid=conference_sid[:34])
        live = CallCoaching.objects.filter(workspace=workspace, ended_at__isnull=True)
        if event == "participant-join" and call_sid:
            live.filter(participant_sid=call_sid, joined_at__isnull=True).update(joined_at=now)
        elif event == "participant-leave" and call_sid:
            live.filter(participant_sid=call_sid).update(ended_at=now)
        elif event == "conference-end":
            live.filter(call__conference_name=friendly_name).update(ended_at=now)


# ---------------------------------------------------------------------------
# Reads


def live_calls(*, workspace):
    """The workspace's answered dialer calls that have not ended, with their rep (a supervisor's own coaching
    call is not one of them)."""
    coaching_legs = CallCoaching.objects.filter(workspace=workspace).exclude(participant_sid="").values(
        "participant_sid")
    return (Call.customer_calls().filter(workspace=workspace, status=Call.Status.IN_PROGRESS, answered_at__isnull=False,
                                ended_at__isnull=True, started_at__gte=timezone.now() - LIVE_FOR)
            .exclude(sid__in=coaching_legs).select_related("user").order_by("-started_at"))


def coaching_for_rep(*, workspace, user) -> list[dict]:
    """Who is on the rep's live calls now: [{"supervisor", "mode", "label"}] (joined and not left)."""
    rows = (CallCoaching.objects.filter(workspace=workspace, call__user=user, joined_at__isnull=False,
                                        ended_at__isnull=True, call__ended_at__isnull=True)
            .select_related("supervisor").order_by("created_at"))
    return [{"supervisor": c.supervisor.get_username() if c.supervisor else "A supervisor", "mode": c.mode,
             "label": c.get_mode_display()} for c in rows]

