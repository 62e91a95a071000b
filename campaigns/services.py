"""Every write of campaigns: contact imports, campaigns' lifecycle, and the scheduler (docs/campaigns.md).

The scheduler (`campaigns_tick`, run by Celery beat and safe to run in any number of workers at once):
1. `_attempts_settle`: attempts whose call ended (read back from the `CallSession` the call wrote: status,
   outcome, answered_by) close with that outcome; the contact is finished or waits for its next attempt;
2. `_claims_recover`: a claim whose lease ran out (its worker died between the claim and the call) either finds
   the call it had placed (the session carries the attempt in `placed_by`) or gives the contact back;
3. `_contacts_dial`: due contacts inside their own calling window are claimed one by one with a conditional
   UPDATE (of two workers exactly one wins), up to the campaign's free slots, paced to the calls-per-second,
   and dialled with `calls.services.outbound.agent_call_place`.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import time as time_module
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from phonenumbers import timezone as number_timezones

from campaigns.models import Campaign, CampaignAttempt, CampaignContact, Contact, ContactList
from webhooks import services as webhook_services
from webhooks.models import EventType

logger = logging.getLogger(__name__)

# A claim must outlast the time it takes to place one call (Twilio's connect + read timeouts, with margin).
LEASE = timedelta(seconds=90)
# A call still unsettled after this long is closed as failed (its final callback was lost).
CALL_GIVE_UP = timedelta(hours=2)
MAX_IMPORT_ROWS = 50_000
PHONE_COLUMNS = ("phone", "phone_number", "number", "mobile", "tel", "telephone")
NAME_COLUMNS = ("name", "full_name", "contact")
FINAL_OUTCOME_STATE = {
    CampaignAttempt.Outcome.ANSWERED: CampaignContact.State.ANSWERED,
    CampaignAttempt.Outcome.VOICEMAIL: CampaignContact.State.VOICEMAIL,
    CampaignAttempt.Outcome.NO_ANSWER: CampaignContact.State.NO_ANSWER,
    CampaignAttempt.Outcome.BUSY: CampaignContact.State.BUSY,
    CampaignAttempt.Outcome.FAILED: CampaignContact.State.FAILED,
}


class CampaignError(Exception):
    """A campaign action that cannot be done now; the message is for people."""


# ---------------------------------------------------------------------------
# Contacts: CSV import


def time_zone_of(e164: str) -> str:
    """The number's IANA time zone when phonenumbers knows exactly one ('' otherwise: the workspace's applies)."""
    try:
        zones = number_timezones.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ""
    zones = [z for z in zones if z != "Etc/Unknown"]
    return zones[0] if zones else ""


def field_name(header: str) -> str:
    """A CSV header as a call variable name: 'First name' → 'first_name'."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", (header or "").strip().lower()).strip("_")
    if name and name[0].isdigit():
        name = "f_" + name
    return name[:64]


@dataclass
class ImportRow:
    line: int
    raw_number: str
    status: str  # "added", "merged", "invalid", "dnc"
    message: str = ""
    phone_number: str = ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    error: str = ""

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def counts(self) -> dict:
        return {s: self.count(s) for s in ("added", "merged", "dnc", "invalid")}


def _csv_parse(*, workspace, text: str, existing: set[str]) -> tuple[ImportReport, dict[str, dict]]:
    """Rows of the CSV → the report and {E.164: {"name", "fields", "do_not_call", "time_zone"}} (merged)."""
    from telephony import numbering
    from telephony.models import DoNotCallNumber

    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = [h for h in (reader.fieldnames or []) if h is not None]
    by_name = {field_name(h): h for h in headers}
    phone_header = next((by_name[c] for c in PHONE_COLUMNS if c in by_name), None)
    if phone_header is None:
        report.error = "The CSV needs a column named phone (or phone_number, number, mobile)."
        return report, {}
    name_header = next((by_name[c] for c in NAME_COLUMNS if c in by_name), None)
    extra = [(field_name(h), h) for h in headers if h not in (phone_header, name_header) and field_name(h)]
    report.fields = [n for n, _ in extra]
    dnc = set(DoNotCallNumber.objects.filter(workspace=workspace).values_list("phone_number", flat=True))
    parsed: dict[str, dict] = {}
    for index, row in enumerate(reader, start=2):
        if index - 1 > MAX_IMPORT_ROWS:
            report.error = f"Only the first {MAX_IMPORT_ROWS} rows were read."
            break
        raw = (row.get(phone_header) or "").strip()
        try:
            e164 = numbering.to_e164(raw, default_country=workspace.default_country or "US")
        except numbering.InvalidNumber as exc:
            report.rows.append(ImportRow(index, raw, "invalid", str(exc)))
            continue
        values = {n: (row.get(h) or "").strip()[:500] for n, h in extra if (row.get(h) or "").strip()}
        name = (row.get(name_header) or "").strip()[:200] if name_header else ""
        merged = e164 in parsed or e164 in existing
        entry = parsed.setdefault(e164, {"name": "", "fields": {}, "do_not_call": e164 in dnc,
                                         "time_zone": time_zone_of(e164)})
        entry["name"] = name or entry["name"]
        entry["fields"].update(values)
        if e164 in dnc:
            report.rows.append(ImportRow(index, raw, "dnc", "On the do-not-call list: imported but never called.",
                                         e164))
        elif merged:
            report.rows.append(ImportRow(index, raw, "merged", "Same number as another row: merged.", e164))
        else:
            report.rows.append(ImportRow(index, raw, "added", "", e164))
    return report, parsed


def contacts_import_preview(*, contact_list: ContactList, text: str) -> ImportReport:
    """What `contacts_import` would do, writing nothing."""
    existing = set(contact_list.contacts.values_list("phone_number", flat=True))
    report, _ = _csv_parse(workspace=contact_list.workspace, text=text, existing=existing)
    return report


@transaction.atomic
def contacts_import(*, contact_list: ContactList, text: str) -> ImportReport:
    """Add the CSV's contacts to the list: a number already in the list is merged (its name and fields updated)."""
    existing = {c.phone_number: c for c in contact_list.contacts.select_for_update()}
    report, parsed = _csv_parse(workspace=contact_list.workspace, text=text, existing=set(existing))
    if report.error and not parsed:
        return report
    new, changed = [], []
    for e164, entry in parsed.items():
        contact = existing.get(e164)
        if contact is None:
            new.append(Contact(contact_list=contact_list, phone_number=e164, name=entry["name"],
                               fields=entry["fields"], time_zone=entry["time_zone"],
                               do_not_call=entry["do_not_call"]))
        else:
            contact.name = entry["name"] or contact.name
            contact.fields = {**(contact.fields or {}), **entry["fields"]}
            contact.do_not_call = contact.do_not_call or entry["do_not_call"]
            contact.time_zone = contact.time_zone or entry["time_zone"]
            changed.append(contact)
    Contact.objects.bulk_create(new, batch_size=1000)
    if changed:
        Contact.objects.bulk_update(changed, ["name", "fields", "do_not_call", "time_zone", "updated_at"],
                                    batch_size=1000)
    return report


def contact_list_create(*, workspace, name: str) -> ContactList:
    return ContactList.objects.create(workspace=workspace, name=name.strip()[:120])


# ---------------------------------------------------------------------------
# Campaigns: lifecycle


def _event(campaign: Campaign, type: str, **extra) -> None:
    """A `campaign.*` event to the campaign's environment's event webhooks (agent campaigns have one)."""
    if campaign.environment_id is None:
        return
    data = {"campaign": {"id": campaign.pk, "name": campaign.name, "status": campaign.status}, **extra}
    webhook_services.event_record(workspace=campaign.workspace_id, environment=campaign.environment_id, type=type,
                                  data=data)


@transaction.atomic
def campaign_start(*, campaign: Campaign, now=None) -> Campaign:
    """Put the list's contacts into the campaign (do-not-call ones finished as DNC) and let the scheduler dial."""
    from telephony.models import DoNotCallNumber

    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignError("Only a draft campaign can be started.")
    if campaign.worked_by == Campaign.WorkedBy.AGENT and (campaign.agent_id is None or campaign.environment_id is None):
        raise CampaignError("Choose the agent and the environment that work this campaign.")
    dnc = set(DoNotCallNumber.objects.filter(workspace_id=campaign.workspace_id).values_list("phone_number", flat=True))
    rows = []
    for contact_id, number, tz, listed in campaign.contact_list.contacts.values_list(
            "pk", "phone_number", "time_zone", "do_not_call").iterator(chunk_size=2000):
        if listed or number in dnc:
            rows.append(CampaignContact(campaign=campaign, contact_id=contact_id, time_zone=tz,
                                        state=CampaignContact.State.DNC, finished_at=now))
        else:
            rows.append(CampaignContact(campaign=campaign, contact_id=contact_id, time_zone=tz,
                                        next_attempt_at=campaign.starts_at or now))
    CampaignContact.objects.bulk_create(rows, batch_size=2000)
    campaign.status = Campaign.Status.RUNNING
    campaign.time_zones = sorted({row.time_zone for row in rows})
    campaign.save(update_fields=["status", "time_zones"])
    _event(campaign, EventType.CAMPAIGN_STARTED, contacts=len(rows))
    return campaign


def _transition(campaign: Campaign, *, allowed: tuple, to: str, event: str) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status not in allowed:
            raise CampaignError(f"A {locked.get_status_display().lower()} campaign cannot be "
                                f"{dict(Campaign.Status.choices)[to].lower()}.")
        locked.status = to
        locked.save(update_fields=["status"])
        _event(locked, event)
    return locked


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """No new calls; calls in progress finish and are recorded."""
    return _transition(campaign, allowed=(Campaign.Status.RUNNING,), to=Campaign.Status.PAUSED,
                       event=EventType.CAMPAIGN_PAUSED)


def campaign_resume(*, campaign: Campaign) -> Campaign:
    return _transition(campaign, allowed=(Campaign.Status.PAUSED,), to=Campaign.Status.RUNNING,
                       event=EventType.CAMPAIGN_RESUMED)


def campaign_cancel(*, campaign: Campaign, now=None) -> Campaign:
    """No further calls: contacts still waiting end as "done" (calls in progress are still recorded)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = _transition(campaign, allowed=(Campaign.Status.DRAFT, Campaign.Status.RUNNING,
                                                  Campaign.Status.PAUSED),
                               to=Campaign.Status.CANCELLED, event=EventType.CAMPAIGN_CANCELLED)
        CampaignContact.objects.filter(campaign=campaign, finished_at__isnull=True,
                                       state__in=CampaignContact.WAITING).update(
            state=CampaignContact.State.DONE, finished_at=now, next_attempt_at=None)
    return campaign


# ---------------------------------------------------------------------------
# The scheduler


def in_window(campaign: Campaign, zone: str, now: datetime) -> bool:
    """Is `now` inside the campaign's calling window in the time zone `zone` (the contact's local time)?"""
    try:
        local = now.astimezone(ZoneInfo(zone or "UTC"))
    except (KeyError, ValueError):
        local = now.astimezone(ZoneInfo("UTC"))
    if campaign.window_days and local.isoweekday() not in campaign.window_days:
        return False
    return campaign.window_start <= local.time().replace(tzinfo=None) < campaign.window_end


def _zones_open(campaign: Campaign, now: datetime) -> list[str]:
    """The campaign's time zones whose local time is inside the window now (no query: fixed at start)."""
    return [z for z in campaign.time_zones or [] if in_window(campaign, z, now)]


def _outcome_of(session) -> tuple[str, str] | None:
    """The attempt's outcome from its call's session, or None while the call is not over."""
    from calls.models import CallSession

    ended = session.ended_at is not None or session.status in (
        CallSession.Status.COMPLETED, "busy", "no-answer", "failed", "canceled")
    if not ended:
        return None
    outcome = session.outcome
    if outcome == CallSession.Outcome.CONVERSATION or (not outcome and session.status == CallSession.Status.COMPLETED):
        if session.answered_by and session.answered_by != "human" and session.answered_by != "unknown":
            return CampaignAttempt.Outcome.VOICEMAIL, session.answered_by
        return CampaignAttempt.Outcome.ANSWERED, session.answered_by
    mapping = {
        CallSession.Outcome.VOICEMAIL_LEFT: CampaignAttempt.Outcome.VOICEMAIL,
        CallSession.Outcome.MACHINE_HUNG_UP: CampaignAttempt.Outcome.VOICEMAIL,
        CallSession.Outcome.BUSY: CampaignAttempt.Outcome.BUSY,
        CallSession.Outcome.NO_ANSWER: CampaignAttempt.Outcome.NO_ANSWER,
    }
    if not outcome:
        outcome = {"busy": "busy", "no-answer": "no_answer"}.get(session.status, "failed")
    return mapping.get(outcome, CampaignAttempt.Outcome.FAILED), session.answered_by


def _retry_minutes(campaign: Campaign, outcome: str) -> int | None:
    return {CampaignAttempt.Outcome.NO_ANSWER: campaign.retry_no_answer_minutes,
            CampaignAttempt.Outcome.BUSY: campaign.retry_busy_minutes,
            CampaignAttempt.Outcome.VOICEMAIL: campaign.retry_voicemail_minutes}.get(outcome)


def attempt_close(*, attempt: CampaignAttempt, outcome: str, answered_by: str = "", detail: str = "",
                  now=None) -> bool:
    """Close one attempt and move its contact on (finished, or waiting for its next attempt). Idempotent: the
    attempt closes once (a conditional UPDATE), whoever settles it."""
    now = now or timezone.now()
    with transaction.atomic():
        if not CampaignAttempt.objects.filter(pk=attempt.pk, ended_at__isnull=True).update(
                ended_at=now, outcome=outcome, answered_by=answered_by[:24], detail=detail[:255]):
            return False
        cc = CampaignContact.objects.select_related("campaign").get(pk=attempt.campaign_contact_id)
        campaign = cc.campaign
        state = FINAL_OUTCOME_STATE.get(outcome, CampaignContact.State.FAILED)
        retry = _retry_minutes(campaign, outcome)
        final = (retry is None or cc.attempts >= campaign.max_attempts
                 or campaign.status == Campaign.Status.CANCELLED
                 or (campaign.ends_at is not None and now >= campaign.ends_at))
        fields = {"state": state, "claim": "", "lease_until": None}
        if final:
            fields.update(finished_at=now, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=now + timedelta(minutes=retry))
        CampaignContact.objects.filter(pk=cc.pk, finished_at__isnull=True).update(**fields)
        if final:
            _event(campaign, EventType.CAMPAIGN_CONTACT_FINISHED,
                   contact={"id": cc.contact_id, "state": state, "attempts": cc.attempts})
    return True


def _attempts_settle(campaign: Campaign, now: datetime) -> int:
    from calls.models import CallSession

    open_attempts = list(CampaignAttempt.objects.filter(
        campaign_contact__campaign=campaign, ended_at__isnull=True, call_session__isnull=False))
    if not open_attempts:
        return 0
    sessions = CallSession.objects.in_bulk([a.call_session_id for a in open_attempts])
    settled = 0
    for attempt in open_attempts:
        session = sessions.get(attempt.call_session_id)
        result = _outcome_of(session) if session else (CampaignAttempt.Outcome.FAILED, "")
        if result is None:
            if now - attempt.started_at > CALL_GIVE_UP:
                result = (CampaignAttempt.Outcome.FAILED, "")
            else:
                continue
        settled += attempt_close(attempt=attempt, outcome=result[0], answered_by=result[1] or "", now=now)
    return settled


def _claim_release(cc_id: int, claim: str, *, attempt_number: int) -> bool:
    """Give a claimed contact back (its call was never placed): the attempt does not count."""
    with transaction.atomic():
        released = CampaignContact.objects.filter(pk=cc_id, claim=claim, state=CampaignContact.State.CALLING).update(
            state=CampaignContact.State.QUEUED, claim="", lease_until=None,
            attempts=F("attempts") - 1)
        if released:
            CampaignAttempt.objects.filter(campaign_contact_id=cc_id, number=attempt_number,
                                           call_session__isnull=True).delete()
    return bool(released)


def _claims_recover(campaign: Campaign, now: datetime) -> int:
    """Claims whose lease ran out with no call attached: attach the call the dead worker placed, or give back."""
    from calls.models import CallSession

    recovered = 0
    stale = CampaignContact.objects.filter(campaign=campaign, state=CampaignContact.State.CALLING,
                                           lease_until__lte=now).values_list("pk", "claim", "attempts")
    for cc_id, claim, attempts in stale:
        attempt = CampaignAttempt.objects.filter(campaign_contact_id=cc_id, number=attempts).first()
        if attempt is not None and (attempt.call_session_id is not None or attempt.dialer_call_id is not None):
            CampaignContact.objects.filter(pk=cc_id, claim=claim).update(lease_until=None)
            continue
        session = None
        if attempt is not None:
            session = CallSession.objects.filter(placed_by=_placed_by(attempt)).first()
        if session is not None:
            CampaignAttempt.objects.filter(pk=attempt.pk, call_session__isnull=True).update(
                call_session=session, from_number=session.from_number)
            CampaignContact.objects.filter(pk=cc_id, claim=claim).update(lease_until=None)
        else:
            recovered += _claim_release(cc_id, claim, attempt_number=attempts)
    return recovered


def _placed_by(attempt: CampaignAttempt) -> str:
    return f"campaign attempt {attempt.pk}"


def _pace(workspace_id: int) -> bool:
    """At most CAMPAIGNS_CALLS_PER_SECOND new calls per workspace per second (Twilio's CPS), across workers."""
    limit = getattr(settings, "CAMPAIGNS_CALLS_PER_SECOND", 1)
    for _ in range(20):
        key = f"campaigns:cps:{workspace_id}:{int(time_module.time())}"
        cache.add(key, 0, timeout=5)
        try:
            if cache.incr(key) <= limit:
                return True
        except ValueError:
            continue
        time_module.sleep(max(0.0, 1.0 - (time_module.time() % 1.0)) + 0.01)
    return False


def _caller_id(campaign: Campaign, to_number: str) -> str:
    if campaign.caller_id_rule == Campaign.CallerIdRule.FIXED:
        return campaign.caller_id
    from telephony.services import NoCallerId, caller_id_choose

    try:
        return caller_id_choose(workspace=campaign.workspace, to_number=to_number, local_presence=True).phone_number
    except NoCallerId:
        return ""


def concurrency_of(campaign: Campaign) -> int:
    """The campaign's limit, never above the workspace's limit of agent calls."""
    from telephony.selectors import max_concurrent_agent_calls

    return max(0, min(campaign.max_concurrent, max_concurrent_agent_calls(workspace=campaign.workspace_id)))


def _claim(cc_id: int, now: datetime) -> str | None:
    """Take one due contact: a single conditional UPDATE on its row, so of two workers exactly one wins."""
    claim = secrets.token_hex(8)
    taken = CampaignContact.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now),
        pk=cc_id, finished_at__isnull=True, state__in=CampaignContact.WAITING, next_attempt_at__lte=now,
    ).update(state=CampaignContact.State.CALLING, claim=claim, lease_until=now + LEASE, attempts=F("attempts") + 1)
    return claim if taken else None


def _dial(campaign: Campaign, cc_id: int, claim: str, now: datetime) -> str:
    from calls.services.outbound import OutboundRefused, agent_call_place

    cc = CampaignContact.objects.select_related("contact").get(pk=cc_id)
    if cc.claim != claim:
        return "lost"
    if cc.attempts > campaign.max_attempts:  # never more than the limit, whatever happened before
        CampaignContact.objects.filter(pk=cc_id, claim=claim).update(
            state=CampaignContact.State.DONE, finished_at=now, claim="", lease_until=None, attempts=F("attempts") - 1)
        return "exhausted"
    contact = cc.contact
    try:
        attempt = CampaignAttempt.objects.create(campaign_contact=cc, number=cc.attempts, started_at=now)
    except IntegrityError:
        return "lost"
    variables = {k: v for k, v in (contact.fields or {}).items()}
    if contact.name:
        variables.setdefault("name", contact.name)
    from_number = _caller_id(campaign, contact.phone_number)
    try:
        session = agent_call_place(
            workspace=campaign.workspace, agent=campaign.agent, environment=campaign.environment,
            to=contact.phone_number, from_number=from_number, version_mode=campaign.version_mode,
            variables=variables, metadata={"campaign": campaign.pk, "contact": contact.pk, "attempt": attempt.number,
                                           # a "dialer reps" handover rings these reps (calls.services.rep_transfers)
                                           **({"reps": list(campaign.handover_reps)} if campaign.handover_reps else {})},
            placed_by=_placed_by(attempt))
    except OutboundRefused as exc:
        if exc.code == "concurrency_limit" or (exc.code == "twilio_error" and exc.status == 503):
            _claim_release(cc_id, claim, attempt_number=attempt.number)
            return "deferred"
        if exc.code == "do_not_call":
            with transaction.atomic():
                CampaignAttempt.objects.filter(pk=attempt.pk).update(
                    ended_at=now, outcome=CampaignAttempt.Outcome.REFUSED, detail=exc.message[:255])
                CampaignContact.objects.filter(pk=cc_id, claim=claim).update(
                    state=CampaignContact.State.DNC, finished_at=now, claim="", lease_until=None)
            return "dnc"
        attempt_close(attempt=attempt, outcome=CampaignAttempt.Outcome.FAILED, detail=exc.message, now=now)
        return "failed"
    with transaction.atomic():
        CampaignAttempt.objects.filter(pk=attempt.pk).update(call_session=session, from_number=session.from_number)
        CampaignContact.objects.filter(pk=cc_id, claim=claim).update(lease_until=None)
    return "dialled"


def _claim_batch(campaign: Campaign, now: datetime) -> list[tuple[int, str]]:
    """Claim up to the campaign's free slots of due contacts inside their window. The campaign's row is locked
    first (an UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so two workers' counts of calls in
    progress never both see the same free slot; each contact is then taken by its own conditional UPDATE."""
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(tick_count=F("tick_count"))
        free = concurrency_of(campaign) - CampaignContact.objects.filter(
            campaign=campaign, state=CampaignContact.State.CALLING).count()
        if free <= 0:
            return []
        zones = _zones_open(campaign, now)
        if not zones:
            return []
        due = list(CampaignContact.objects.filter(
            campaign=campaign, finished_at__isnull=True, state__in=CampaignContact.WAITING, next_attempt_at__lte=now,
            time_zone__in=zones).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:free])
        claims = []
        for cc_id in due:
            claim = _claim(cc_id, now)
            if claim is not None:
                claims.append((cc_id, claim))
        return claims


def _contacts_dial(campaign: Campaign, now: datetime) -> int:
    if campaign.worked_by != Campaign.WorkedBy.AGENT:
        return 0  # reps work their campaigns from the dialer
    claims = _claim_batch(campaign, now)
    dialled = 0
    for index, (cc_id, claim) in enumerate(claims):
        if not _pace(campaign.workspace_id):
            rest = claims[index:]
        elif _dial(campaign, cc_id, claim, now) == "deferred":  # the workspace is at its limit (released)
            rest = claims[index + 1:]
        else:
            dialled += 1
            continue
        for rest_id, rest_claim in rest:
            _claim_release(rest_id, rest_claim, attempt_number=CampaignContact.objects.get(pk=rest_id).attempts)
        break
    return dialled


def _campaign_finish_if_done(campaign: Campaign, now: datetime) -> bool:
    if campaign.ends_at is not None and now >= campaign.ends_at:
        CampaignContact.objects.filter(campaign=campaign, finished_at__isnull=True,
                                       state__in=CampaignContact.WAITING).update(
            state=CampaignContact.State.DONE, finished_at=now, next_attempt_at=None)
    if CampaignContact.objects.filter(campaign=campaign, finished_at__isnull=True).exists():
        return False
    with transaction.atomic():
        if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
                status=Campaign.Status.COMPLETED):
            campaign.status = Campaign.Status.COMPLETED
            _event(campaign, EventType.CAMPAIGN_COMPLETED)
            return True
    return False


def campaign_tick(*, campaign: Campaign, now=None) -> dict:
    now = now or timezone.now()
    result = {"settled": _attempts_settle(campaign, now), "recovered": _claims_recover(campaign, now), "dialled": 0}
    if campaign.worked_by == Campaign.WorkedBy.REPS:
        from campaigns.power import rep_attempts_settle

        result["settled"] += rep_attempts_settle(campaign, now)
    campaign.refresh_from_db(fields=["status"])
    if campaign.status != Campaign.Status.RUNNING:
        Campaign.objects.filter(pk=campaign.pk).update(ticked_at=now, tick_count=F("tick_count") + 1)
    if campaign.status == Campaign.Status.CANCELLED:
        CampaignContact.objects.filter(campaign=campaign, finished_at__isnull=True,
                                       state__in=CampaignContact.WAITING).update(
            state=CampaignContact.State.DONE, finished_at=now, next_attempt_at=None)
    if campaign.status != Campaign.Status.RUNNING:
        return result
    if campaign.starts_at is None or now >= campaign.starts_at:
        if campaign.ends_at is None or now < campaign.ends_at:
            result["dialled"] = _contacts_dial(campaign, now)
    result["completed"] = _campaign_finish_if_done(campaign, now)
    Campaign.objects.filter(pk=campaign.pk).update(ticked_at=now, tick_count=F("tick_count") + 1)
    return result


def campaigns_tick(*, now=None) -> dict:
    """One pass of the scheduler over every running or paused campaign (paused ones only settle their calls)."""
    now = now or timezone.now()
    totals = {"campaigns": 0, "settled": 0, "recovered": 0, "dialled": 0}
    for campaign in Campaign.objects.filter(status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED,
                                                        Campaign.Status.CANCELLED]).select_related("workspace"):
        if campaign.status == Campaign.Status.CANCELLED and not CampaignAttempt.objects.filter(
                campaign_contact__campaign=campaign, ended_at__isnull=True).exists():
            continue
        result = campaign_tick(campaign=campaign, now=now)
        totals["campaigns"] += 1
        for key in ("settled", "recovered", "dialled"):
            totals[key] += result[key]
    return totals
