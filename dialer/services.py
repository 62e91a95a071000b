"""Writes for browser-dialer calls: what Twilio's voice webhooks and status callbacks change.

Every function is keyword-only and transactional. Status changes go through
`_advance`, which only moves a status forward (queued/initiated → ringing →
in-progress → final) and fills timestamps that are still empty, so Twilio
retrying a callback, or delivering callbacks out of order, changes nothing
twice and never moves a final status back.

Outbound call flow (TwiML app voice URL, From = client:<identity>):
  call_outbound_start → <Dial callerId action=dial-done><Number statusCallback=leg-status>
  call_leg_status_apply (ringing / answered / final of the dialed leg)
  call_dial_finished (Dial's action: DialCallStatus/DialCallDuration, the call's outcome)
  call_status_apply (the TwiML app's status callback for the parent call: ended_at, fills gaps)
Inbound (a call to one of the workspace's numbers): call_inbound_start rings the online members'
browsers (<Dial><Client>…); call_dial_finished decides voicemail; voicemail_recording_apply.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists
from django.utils import timezone

from dialer.models import Call, CallLeg, Voicemail
from dialer.tokens import identity_parse, online_user_ids, voice_identity
from telephony import numbering
from telephony.models import CallerId, PhoneNumber
from telephony.selectors import do_not_call_listed
from workspaces.models import Membership

logger = logging.getLogger(__name__)

AUTO = "auto"
MAX_CLIENTS_RUNG = 10  # Twilio's <Dial> takes at most 10 nouns

REFUSE_NOT_MEMBER = "This dialer is not signed in to this workspace. The call was not placed."
REFUSE_BAD_NUMBER = "The number you dialed is not a valid phone number. Please check it and try again."
REFUSE_CALLER_ID = ("The number you chose to call from is not one of this workspace's verified numbers. "
                    "The call was not placed.")
REFUSE_NO_CALLER_ID = "This workspace has no number to call from yet. The call was not placed."
INBOUND_UNKNOWN_NUMBER = "The number you called is not in service."
# What the caller hears for each refusal (a retried webhook hears the same as the first attempt).
REFUSE_DO_NOT_CALL = ("The number you dialed is on this workspace's do-not-call list. The call was not placed.")
REFUSAL_SPOKEN = {
    Call.Refusal.DO_NOT_CALL: REFUSE_DO_NOT_CALL,
    Call.Refusal.NOT_MEMBER: REFUSE_NOT_MEMBER,
    Call.Refusal.BAD_NUMBER: REFUSE_BAD_NUMBER,
    Call.Refusal.CALLER_ID_NOT_USABLE: REFUSE_CALLER_ID,
    Call.Refusal.NO_CALLER_ID: REFUSE_NO_CALLER_ID,
    Call.Refusal.UNKNOWN_NUMBER: INBOUND_UNKNOWN_NUMBER,
}


@dataclass
class OutboundDecision:
    call: Call
    allowed: bool
    to_number: str = ""
    caller_id: str = ""
    message: str = ""  # spoken when refused


@dataclass
class InboundDecision:
    call: Call
    known_number: bool
    identities: list[str] = field(default_factory=list)


def _now() -> datetime:
    return timezone.now()


def _advance(obj, status: str, *, when: datetime | None = None, duration: int | None = None) -> list[str]:
    """Move obj.status forward to `status` if it is later; fill empty timestamps. Returns changed fields."""
    when = when or _now()
    changed: list[str] = []
    if status not in Call.Status.values and status != "answered":
        return changed
    if status == "answered":
        status = Call.Status.IN_PROGRESS
    if Call.Status.rank(status) > Call.Status.rank(obj.status):
        obj.status = status
        changed.append("status")
    if status == Call.Status.IN_PROGRESS and obj.answered_at is None and not (
            obj.ended_at is not None and obj.ended_at < when):
        obj.answered_at = when
        changed.append("answered_at")
    if Call.Status.is_final(status):
        if obj.ended_at is None:
            obj.ended_at = when
            changed.append("ended_at")
        if duration is not None and obj.duration is None:
            obj.duration = max(0, int(duration))
            changed.append("duration")
    return changed


def _save(obj, changed: list[str]) -> None:
    if changed:
        obj.save(update_fields=[*dict.fromkeys(changed), "updated_at"])


def _log_refusal(*, workspace, call_sid: str, reason: str, **extra) -> None:
    logger.warning("outbound call refused", extra={"workspace_id": workspace.pk, "call_sid": call_sid,
                                                   "reason": reason, **extra})


def _caller_id_auto(*, workspace, to_number: str, local_presence: bool | None = None) -> CallerId | None:
    """"Auto": local presence when the workspace has it on (Settings → Dialer's `caller_id_choose`), else the
    default caller ID; None when the workspace has no usable caller ID."""
    from telephony.services import NoCallerId, caller_id_choose

    try:
        return caller_id_choose(workspace=workspace, to_number=to_number, requested=None,
                                local_presence=local_presence)
    except NoCallerId:
        return None


def _member_user_id(*, workspace, identity: str) -> int | None:
    """The user id behind a `client:ws<id>-u<id>` identity if that user is a member of `workspace`."""
    parsed = identity_parse(identity or "")
    if parsed is None or parsed[0] != workspace.pk:
        return None
    return Membership.objects.filter(workspace=workspace, user_id=parsed[1]).values_list("user_id", flat=True).first()


def _member_and_caller_id(*, workspace, identity: str, caller_id_e164: str) -> tuple[int | None, bool]:
    """One query: (the member's user id or None, whether `caller_id_e164` is a usable caller ID of the workspace)."""
    from telephony.selectors import caller_ids_for_dialer

    parsed = identity_parse(identity or "")
    if parsed is None or parsed[0] != workspace.pk:
        return None, False
    # .order_by(): at most one row, so Membership's default ordering would only add joins to auth_user and the workspace.
    qs = Membership.objects.filter(workspace=workspace, user_id=parsed[1]).order_by()
    if not caller_id_e164:
        return qs.values_list("user_id", flat=True).first(), False
    row = qs.annotate(caller_ok=Exists(caller_ids_for_dialer(workspace=workspace).filter(
        phone_number=caller_id_e164))).values_list("user_id", "caller_ok").first()
    return (row[0], bool(row[1])) if row else (None, False)


def call_outbound_start(*, workspace, call_sid: str, from_identity: str, to: str, requested_caller_id: str,
                        local_presence: bool | None = None) -> OutboundDecision:
    """Check and record a browser-dialer call. Idempotent per CallSid: a retried webhook gets the same answer.

    Refused (spoken message, reason logged and stored): an identity that is not a member of the workspace, an
    invalid destination, a caller ID the workspace neither owns nor has verified. "auto" (or nothing) applies
    local presence through `caller_id_choose`.
    """
    requested = (requested_caller_id or "").strip()
    auto = not requested or requested.lower() == AUTO
    requested_e164 = ""
    if not auto:
        try:
            requested_e164 = numbering.to_e164(requested, default_country=workspace.default_country)
        except numbering.InvalidNumber:
            requested_e164 = ""
    user_id, caller_ok = _member_and_caller_id(workspace=workspace, identity=from_identity,
                                               caller_id_e164=requested_e164)
    reason = ""
    to_number = caller_id = ""
    if user_id is None:
        reason = Call.Refusal.NOT_MEMBER
    else:
        try:
            to_number = numbering.to_e164(to, default_country=workspace.default_country)
        except numbering.InvalidNumber:
            reason = Call.Refusal.BAD_NUMBER
        else:
            if do_not_call_listed(workspace=workspace, phone_number=to_number):
                reason = Call.Refusal.DO_NOT_CALL
    if not reason:
        if auto:
            chosen = _caller_id_auto(workspace=workspace, to_number=to_number, local_presence=local_presence)
            if chosen is None:
                reason = Call.Refusal.NO_CALLER_ID
            else:
                caller_id = chosen.phone_number
        elif caller_ok:
            caller_id = requested_e164
        else:
            reason = Call.Refusal.CALLER_ID_NOT_USABLE

    defaults = dict(workspace=workspace, direction=Call.Direction.OUTBOUND, user_id=user_id,
                    from_number=caller_id or from_identity[:64], to_number=to_number or (to or "")[:64],
                    caller_id=caller_id, status=Call.Status.REFUSED if reason else Call.Status.INITIATED,
                    refusal_reason=reason, ended_at=_now() if reason else None)
    # Insert first: a retried webhook (same CallSid) hits the unique constraint and gets the stored answer.
    call, created = _call_create(call_sid=call_sid, defaults=defaults)
    if not created:
        if call.workspace_id != workspace.pk:
            _log_refusal(workspace=workspace, call_sid=call_sid, reason="foreign_call_sid")
            return OutboundDecision(call=call, allowed=False, message=REFUSE_NOT_MEMBER)
        if call.status == Call.Status.REFUSED:
            return OutboundDecision(call=call, allowed=False, message=_refusal_message(call.refusal_reason))
        return OutboundDecision(call=call, allowed=True, to_number=call.to_number, caller_id=call.caller_id)
    if reason:
        _log_refusal(workspace=workspace, call_sid=call_sid, reason=reason,
                     requested_caller_id=(requested_caller_id or "")[:32])
        return OutboundDecision(call=call, allowed=False, message=REFUSAL_SPOKEN[reason])
    return OutboundDecision(call=call, allowed=True, to_number=call.to_number, caller_id=call.caller_id)


def _call_create(*, call_sid: str, defaults: dict) -> tuple[Call, bool]:
    """Insert the Call for `call_sid`; a concurrent retry of the same webhook finds the row instead."""
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint, so a duplicate does not break the outer transaction
                return Call.objects.create(sid=call_sid, **defaults), True
        return Call.objects.create(sid=call_sid, **defaults), True  # autocommit: one round trip
    except IntegrityError:
        return Call.objects.get(sid=call_sid), False


def _refusal_message(reason: str) -> str:
    """The spoken message of a stored refusal code (an unknown code, e.g. written by hand, says "not placed")."""
    return REFUSAL_SPOKEN.get(reason, REFUSE_NOT_MEMBER)


def call_inbound_start(*, workspace, call_sid: str, from_number: str, to_number: str) -> InboundDecision:
    """Record an inbound call and pick the browser dialers to ring (members holding a valid voice token)."""
    try:
        to_e164 = numbering.to_e164(to_number, default_country=workspace.default_country)
    except numbering.InvalidNumber:
        to_e164 = ""
    known = bool(to_e164) and PhoneNumber.objects.filter(workspace=workspace, phone_number=to_e164).exists()
    defaults = dict(workspace=workspace, direction=Call.Direction.INBOUND, from_number=(from_number or "")[:64],
                    to_number=(to_e164 or to_number or "")[:64],
                    status=Call.Status.RINGING if known else Call.Status.REFUSED,
                    refusal_reason="" if known else Call.Refusal.UNKNOWN_NUMBER, ended_at=None if known else _now())
    call = Call.objects.filter(sid=call_sid).first() or _call_create(call_sid=call_sid, defaults=defaults)[0]
    if call.workspace_id != workspace.pk or not known:
        logger.warning("inbound call to a number the workspace does not own",
                       extra={"workspace_id": workspace.pk, "call_sid": call_sid})
        return InboundDecision(call=call, known_number=False)
    member_ids = list(Membership.objects.filter(workspace=workspace).order_by("user_id")
                      .values_list("user_id", flat=True))
    online = online_user_ids(workspace_id=workspace.pk, user_ids=member_ids)[:MAX_CLIENTS_RUNG]
    return InboundDecision(call=call, known_number=True,
                           identities=[voice_identity(workspace_id=workspace.pk, user_id=uid) for uid in online])


def _locked_call(*, workspace, call_sid: str) -> Call | None:
    return Call.objects.select_for_update().filter(workspace=workspace, sid=call_sid).first()


def call_status_apply(*, workspace, call_sid: str, status: str, duration: int | None = None,
                      when: datetime | None = None, from_number: str = "", to_number: str = "") -> Call | None:
    """The parent call's status callback (TwiML app StatusCallback). Unknown CallSids are recorded."""
    with transaction.atomic():
        call = _locked_call(workspace=workspace, call_sid=call_sid)
        seen_before = call is not None
        if call is None:
            direction = Call.Direction.OUTBOUND if from_number.startswith("client:") else Call.Direction.INBOUND
            user_id = _member_user_id(workspace=workspace, identity=from_number) if direction == "outbound" else None
            try:
                with transaction.atomic():
                    call = Call.objects.create(workspace=workspace, sid=call_sid, direction=direction, user_id=user_id,
                                               from_number=from_number[:64], to_number=to_number[:64],
                                               status=Call.Status.INITIATED, started_at=when or _now())
            except IntegrityError:
                call = _locked_call(workspace=workspace, call_sid=call_sid)
                if call is None:  # the CallSid belongs to another workspace
                    return None
        if (seen_before and status == Call.Status.COMPLETED and call.direction == Call.Direction.OUTBOUND
                and not call.is_final
                and call.answered_at is None and Call.Status.rank(call.status) < Call.Status.rank("in-progress")):
            # The rep hung up before anyone answered: Twilio skips Dial's action then, and reports the
            # browser leg as "completed". Nobody talked, so the call was canceled.
            status = Call.Status.CANCELED
        _save(call, _advance(call, status, when=when, duration=duration))
    return call


def call_leg_status_apply(*, workspace, parent_sid: str, leg_sid: str, status: str, to_number: str = "",
                          from_number: str = "", duration: int | None = None, when: datetime | None = None,
                          ) -> CallLeg | None:
    """A dialed leg's status callback (`<Number>`/`<Client>` statusCallback). Legs of unknown calls are ignored."""
    with transaction.atomic():
        call = _locked_call(workspace=workspace, call_sid=parent_sid)
        if call is None:
            return None
        is_client = to_number.startswith("client:")
        leg_user_id = _member_user_id(workspace=workspace, identity=to_number) if is_client else None
        leg, created = CallLeg.objects.get_or_create(
            sid=leg_sid,
            defaults=dict(call=call, kind=CallLeg.Kind.CLIENT if is_client else CallLeg.Kind.NUMBER,
                          to_number=to_number[:64], from_number=from_number[:64], user_id=leg_user_id,
                          started_at=when or _now()),
        )
        if leg.call_id != call.pk:
            return None
        _save(leg, _advance(leg, status, when=when, duration=duration))
        # The call follows its legs up to "in-progress"; its outcome comes from Dial's action (call_dial_finished).
        if status in ("ringing", "in-progress", "answered"):
            changed = _advance(call, status, when=when)
            if (status != "ringing" and call.direction == Call.Direction.INBOUND and call.user_id is None
                    and leg.user_id is not None):
                call.user_id = leg.user_id
                changed.append("user")
            _save(call, changed)
    return leg


def call_dial_finished(*, workspace, call_sid: str, dial_status: str, dial_duration: int | None = None,
                       when: datetime | None = None) -> Call | None:
    """`<Dial action>`: the dialed party's outcome is the call's outcome (answered → completed with talk time)."""
    with transaction.atomic():
        call = _locked_call(workspace=workspace, call_sid=call_sid)
        if call is None:
            return None
        if dial_status == Call.Status.COMPLETED and call.answered_at is None:
            # Answered but the "answered" leg callback has not arrived (yet): derive it from the talk time.
            end = when or _now()
            call.answered_at = end - timedelta(seconds=dial_duration or 0)
            _save(call, ["answered_at"])
        _save(call, _advance(call, dial_status, when=when, duration=dial_duration))
    return call


def voicemail_recording_apply(*, workspace, recording_sid: str, call_sid: str, status: str,
                              duration: int | None = None) -> Voicemail:
    """Recording status callback of a voicemail (in-progress, completed, absent, failed); idempotent."""
    with transaction.atomic():
        call = Call.objects.filter(workspace=workspace, sid=call_sid).first()
        vm, _ = Voicemail.objects.select_for_update().get_or_create(
            recording_sid=recording_sid,
            defaults=dict(workspace=workspace, call=call, call_sid=call_sid[:34]),
        )
        if vm.workspace_id != workspace.pk:
            raise PermissionError("recording of another workspace")
        changed = []
        # in-progress → completed | absent | failed, once; a final status never changes.
        if vm.status == Voicemail.Status.IN_PROGRESS and status in Voicemail.Status.values and status != vm.status:
            vm.status = status
            changed.append("status")
        if duration is not None and vm.duration is None and status != Voicemail.Status.IN_PROGRESS:
            vm.duration = max(0, int(duration))
            changed.append("duration")
        if vm.call_id is None and call is not None:
            vm.call = call
            changed.append("call")
        _save(vm, changed)
    return vm



def rep_transfer_call_apply(*, event: str, workspace_id: int, call_sid: str, agent_call_id: int | None = None,
                            user_id: int | None = None, from_number: str = "", to_number: str = "",
                            status: str = "", duration: int | None = None) -> Call | None:
    """A caller an agent handed over to the reps (telephony.hooks.rep_call_hooks): the rep's leg is an ordinary
    inbound dialer call of that rep, linked to the agent call. "taken" records it (ringing); "status" moves it on
    (answered, ended with its talk time). Idempotent per CallSid."""
    if not call_sid:
        return None
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(sid=call_sid).first()
        if call is None and event == "taken":
            call, _ = _call_create(call_sid=call_sid, defaults=dict(
                workspace_id=workspace_id, direction=Call.Direction.INBOUND, user_id=user_id,
                from_number=(from_number or "")[:64], to_number=(to_number or "")[:64], status=Call.Status.RINGING,
                agent_call_id=agent_call_id))
        if call is None or call.workspace_id != workspace_id:
            return None
        if event == "status" and status:
            _save(call, _advance(call, status, duration=duration))
    return call
