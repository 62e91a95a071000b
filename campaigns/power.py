"""The reps' side of campaigns: the power dialer (docs/campaigns.md, "Worked by reps").

A rep clicks Start in the browser dialer; `power_next` claims the next due contact with the scheduler's own
conditional UPDATE (`services._claim`: of two reps, or a rep and a worker, exactly one wins; attempts counted at
the claim, never above the limit; only contacts inside their calling window), records the attempt and answers
the contact card and the caller ID (the campaign's rule). The browser dials it (the dialer's TwiML app checks the
caller ID again) and reports the CallSid (`power_dialled`: the attempt holds the call, the claim's lease ends).
After the call the rep's disposition closes the attempt (`power_finish`): its outcome (Settings → Dialer →
Dispositions) goes through `services.attempt_close`, so the campaign's retry rules apply; if the browser's call
failed before Twilio knew it (no CallSid), the disposition releases the claim instead (`CallNeverPlaced`: the
contact goes back to the queue, the attempt does not count). A claim never dialled
runs out like a dead worker's (`services._claims_recover`); a call the rep never wrapped up is settled from the
call's status after `WRAP_UP_LIMIT` (`rep_attempts_settle`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignAttempt, CampaignContact
from dialer.models import Call, Disposition

WRAP_UP_LIMIT = timedelta(minutes=15)
CALL_STATUS_OUTCOME = {
    Call.Status.COMPLETED: CampaignAttempt.Outcome.ANSWERED,
    Call.Status.BUSY: CampaignAttempt.Outcome.BUSY,
    Call.Status.NO_ANSWER: CampaignAttempt.Outcome.NO_ANSWER,
    Call.Status.CANCELED: CampaignAttempt.Outcome.NO_ANSWER,
}


class CallNeverPlaced(services.CampaignError):
    """The rep's browser call for an attempt never reached Twilio (no CallSid): the contact was given back."""


@dataclass
class PowerContact:
    attempt: CampaignAttempt
    caller_id: str
    history: list = field(default_factory=list)

    def as_json(self) -> dict:
        cc = self.attempt.campaign_contact
        contact = cc.contact
        return {
            "attempt": self.attempt.pk, "campaign": cc.campaign_id, "number": self.attempt.number,
            "max_attempts": cc.campaign.max_attempts,
            "contact": {"name": contact.name, "phone_number": contact.phone_number, "fields": contact.fields or {},
                        "time_zone": cc.time_zone},
            "caller_id": self.caller_id, "history": self.history,
        }


def campaigns_for_rep(*, workspace, user):
    """Running campaigns worked by reps that this rep is on (an empty team: every member)."""
    return (Campaign.objects.filter(workspace=workspace, worked_by=Campaign.WorkedBy.REPS,
                                    status=Campaign.Status.RUNNING)
            .filter(Q(reps=user) | Q(reps__isnull=True)).distinct().order_by("name"))


def _rep_campaign(*, workspace, user, campaign_id: int) -> Campaign:
    campaign = campaigns_for_rep(workspace=workspace, user=user).filter(pk=campaign_id).first()
    if campaign is None:
        raise services.CampaignError("This campaign is not running, or you are not on its team.")
    return campaign


def _history(cc: CampaignContact, *, before: int) -> list[dict]:
    rows = CampaignAttempt.objects.filter(campaign_contact=cc, number__lt=before).select_related("rep")
    return [{"number": a.number, "started_at": a.started_at.isoformat(), "outcome": a.get_outcome_display(),
             "disposition": a.disposition, "notes": a.notes, "rep": a.rep.username if a.rep else ""} for a in rows]


def _card(attempt: CampaignAttempt) -> PowerContact:
    attempt = CampaignAttempt.objects.select_related("campaign_contact__contact", "campaign_contact__campaign").get(
        pk=attempt.pk)
    cc = attempt.campaign_contact
    return PowerContact(attempt=attempt, caller_id=services._caller_id(cc.campaign, cc.contact.phone_number),
                        history=_history(cc, before=attempt.number))


def power_next(*, workspace, user, campaign_id: int, now: datetime | None = None) -> PowerContact | None:
    """Claim the campaign's next due contact for this rep and record the attempt; None when nobody is due now.
    A rep's attempt still open (a reload) is handed back instead of claiming another."""
    now = now or timezone.now()
    campaign = _rep_campaign(workspace=workspace, user=user, campaign_id=campaign_id)
    if campaign.starts_at and now < campaign.starts_at or campaign.ends_at and now >= campaign.ends_at:
        return None
    open_attempt = (CampaignAttempt.objects.filter(campaign_contact__campaign=campaign, rep=user, ended_at__isnull=True)
                    .order_by("-pk").first())
    if open_attempt is not None:
        return _card(open_attempt)
    zones = services._zones_open(campaign, now)
    if not zones:
        return None
    due = CampaignContact.objects.filter(
        campaign=campaign, finished_at__isnull=True, state__in=CampaignContact.WAITING, next_attempt_at__lte=now,
        time_zone__in=zones).order_by("next_attempt_at", "pk").values_list("pk", flat=True)
    for cc_id in due[:20]:  # another rep may take each one first: try the next
        claim = services._claim(cc_id, now)
        if claim is None:
            continue
        cc = CampaignContact.objects.get(pk=cc_id)
        if cc.attempts > campaign.max_attempts:  # never more than the limit, whatever happened before
            CampaignContact.objects.filter(pk=cc_id, claim=claim).update(
                state=CampaignContact.State.DONE, finished_at=now, claim="", lease_until=None,
                attempts=F("attempts") - 1)
            continue
        try:
            attempt = CampaignAttempt.objects.create(campaign_contact=cc, number=cc.attempts, started_at=now, rep=user)
        except IntegrityError:
            continue
        return _card(attempt)
    return None


def _rep_attempt(*, workspace, user, attempt_id: int) -> CampaignAttempt:
    attempt = (CampaignAttempt.objects.select_related("campaign_contact__contact", "campaign_contact__campaign")
               .filter(pk=attempt_id, rep=user, campaign_contact__campaign__workspace=workspace).first())
    if attempt is None:
        raise services.CampaignError("That contact is not yours to call.")
    return attempt


def _link_call(attempt: CampaignAttempt, call_sid: str) -> bool:
    cc = attempt.campaign_contact
    call = Call.objects.filter(workspace_id=cc.campaign.workspace_id, sid=call_sid, user_id=attempt.rep_id,
                               to_number=cc.contact.phone_number).first()
    if call is None:
        return False
    with transaction.atomic():
        CampaignAttempt.objects.filter(pk=attempt.pk, dialer_call__isnull=True).update(
            dialer_call=call, from_number=call.caller_id)
        CampaignContact.objects.filter(pk=cc.pk, state=CampaignContact.State.CALLING).update(lease_until=None)
    attempt.dialer_call = call
    return True


def power_dialled(*, workspace, user, attempt_id: int, call_sid: str) -> CampaignAttempt:
    """The browser placed the contact's call: the attempt holds it (the claim no longer runs out)."""
    attempt = _rep_attempt(workspace=workspace, user=user, attempt_id=attempt_id)
    if attempt.ended_at is not None:
        raise services.CampaignError("This attempt is already closed.")
    if attempt.dialer_call_id is None and not _link_call(attempt, call_sid):
        raise services.CampaignError("That call is not this contact's call from your dialer.")
    return attempt


def power_finish(*, workspace, user, attempt_id: int, disposition_id: int | None, notes: str = "",
                 call_sid: str = "", now: datetime | None = None) -> CampaignAttempt:
    """The rep's disposition and notes close the attempt; the disposition's outcome decides the contact's next
    attempt (the campaign's retry rules) or its end."""
    from dialer import dispositions

    now = now or timezone.now()
    attempt = _rep_attempt(workspace=workspace, user=user, attempt_id=attempt_id)
    disposition = Disposition.objects.filter(workspace=workspace, pk=disposition_id or 0, archived=False).first()
    if disposition is None:
        raise services.CampaignError("Pick a disposition for this contact.")
    if attempt.ended_at is not None:
        raise services.CampaignError("This attempt is already closed.")
    if attempt.dialer_call_id is None and call_sid and not _link_call(attempt, call_sid):
        # A CallSid the call log does not hold as this rep's call to this contact: the disposition would
        # describe no call (and the call log would never show it). The attempt stays open; a claim never
        # linked to a call runs out and goes back to the queue (`services._claims_recover`).
        raise services.CampaignError("That call is not this contact's call from your dialer.")
    if attempt.dialer_call_id is None and not call_sid:
        # The browser's call failed before Twilio knew it: nobody was called, so nothing to disposition.
        _never_placed(attempt)
    notes = (notes or "").strip()[:5000]
    if attempt.dialer_call_id is not None:
        dispositions.call_disposition_set(workspace=workspace, user=user, call_sid=attempt.dialer_call.sid,
                                          disposition_id=disposition.pk, notes=notes)
    CampaignAttempt.objects.filter(pk=attempt.pk).update(disposition=disposition.name, notes=notes)
    services.attempt_close(attempt=attempt, outcome=disposition.outcome, detail=f"Rep: {disposition.name}", now=now)
    attempt.refresh_from_db()
    return attempt


def _never_placed(attempt: CampaignAttempt) -> None:
    cc = attempt.campaign_contact
    who = cc.contact.name or cc.contact.phone_number
    if services._claim_release(cc.pk, cc.claim, attempt_number=attempt.number):
        raise CallNeverPlaced(f"The call to {who} never reached the phone network, so nobody was called: "
                              "the contact goes back to the queue and this attempt does not count.")
    raise services.CampaignError(f"The call to {who} was never placed and the contact could not be given back: "
                                 "reload the dialer.")


def power_release(*, workspace, user, attempt_id: int) -> bool:
    """A contact claimed but never dialled (the rep stopped, the browser could not place the call): given back,
    the attempt does not count."""
    attempt = _rep_attempt(workspace=workspace, user=user, attempt_id=attempt_id)
    if attempt.dialer_call_id is not None or attempt.ended_at is not None:
        return False
    cc = attempt.campaign_contact
    return services._claim_release(cc.pk, cc.claim, attempt_number=attempt.number)


def rep_attempts_settle(campaign: Campaign, now: datetime) -> int:
    """Calls a rep never wrapped up: closed from the call's own status once it ended `WRAP_UP_LIMIT` ago."""
    settled = 0
    stale = CampaignAttempt.objects.filter(
        campaign_contact__campaign=campaign, ended_at__isnull=True, dialer_call__ended_at__lte=now - WRAP_UP_LIMIT,
    ).select_related("dialer_call")
    for attempt in stale:
        outcome = CALL_STATUS_OUTCOME.get(attempt.dialer_call.status, CampaignAttempt.Outcome.FAILED)
        settled += services.attempt_close(attempt=attempt, outcome=outcome, detail="Not wrapped up by the rep", now=now)
    return settled
