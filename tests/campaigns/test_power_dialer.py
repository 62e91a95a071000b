"""The reps' power dialer on the server (campaigns.power): the scheduler's claim, windows, attempts, dispositions
as outcomes with the retry rules, claims never dialled, calls never wrapped up, the team, the progress page."""
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.urls import reverse

from campaigns import power, services
from campaigns.models import Campaign, CampaignAttempt, CampaignContact
from dialer.dispositions import dispositions_for
from dialer.models import Call
from tests.campaigns.helpers import campaign_setup
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MONDAY_14_UTC = datetime(2026, 12, 7, 14, 0, tzinfo=dt_timezone.utc)  # 08:00 in Chicago (512 numbers)
NUMBERS = ["+15125550123", "+15125550124", "+15125550125"]


def _reps_campaign(**fields):
    o, campaign = campaign_setup(numbers=NUMBERS, worked_by=Campaign.WorkedBy.REPS, agent=None, environment=None,
                                 max_attempts=2, **fields)
    reps = [UserFactory(username=name) for name in ("rita", "bob")]
    for rep in reps:
        MembershipFactory(workspace=o.workspace, user=rep)
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    return o.workspace, campaign, reps


def _disposition(workspace, key):
    return next(d for d in dispositions_for(workspace=workspace) if d.key == key)


def _browser_call(workspace, rep, card, sid):
    return Call.objects.create(workspace=workspace, sid=sid, direction=Call.Direction.OUTBOUND, user=rep,
                               to_number=card.attempt.campaign_contact.contact.phone_number,
                               caller_id=card.caller_id, status=Call.Status.COMPLETED, ended_at=MONDAY_14_UTC)


def test_two_reps_never_get_the_same_contact_and_a_disposition_is_the_attempts_outcome():
    workspace, campaign, (rita, bob) = _reps_campaign()

    first = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    second = power.power_next(workspace=workspace, user=bob, campaign_id=campaign.pk, now=MONDAY_14_UTC)

    assert first.attempt.campaign_contact_id != second.attempt.campaign_contact_id
    assert first.caller_id == campaign.caller_id  # the campaign's fixed caller ID
    assert first.as_json()["contact"]["fields"] == {"first_name": "Lead0"}
    cc = CampaignContact.objects.get(pk=first.attempt.campaign_contact_id)
    assert (cc.state, cc.attempts) == ("calling", 1)
    # A reload hands the rep's open contact back instead of claiming another.
    again = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    assert again.attempt.pk == first.attempt.pk

    call = _browser_call(workspace, rita, first, "CA" + "1" * 32)
    power.power_dialled(workspace=workspace, user=rita, attempt_id=first.attempt.pk, call_sid=call.sid)
    assert CampaignContact.objects.get(pk=cc.pk).lease_until is None
    power.power_finish(workspace=workspace, user=rita, attempt_id=first.attempt.pk,
                       disposition_id=_disposition(workspace, "meeting_booked").pk, notes="Tuesday 10:00",
                       now=MONDAY_14_UTC)

    attempt = CampaignAttempt.objects.get(pk=first.attempt.pk)
    assert (attempt.outcome, attempt.disposition, attempt.notes, attempt.dialer_call_id) == (
        "answered", "Meeting booked", "Tuesday 10:00", call.pk)
    cc.refresh_from_db()
    assert cc.state == "answered" and cc.finished_at is not None
    call.refresh_from_db()
    assert (call.disposition.name, call.notes) == ("Meeting booked", "Tuesday 10:00")  # the call log shows it too


def test_no_answer_waits_for_its_retry_and_attempts_never_exceed_the_limit():
    workspace, campaign, (rita, _) = _reps_campaign()
    no_answer = _disposition(workspace, "no_answer")
    now = MONDAY_14_UTC
    tries = 0
    while True:
        card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=now)
        if card is None:
            break
        tries += 1
        call = _browser_call(workspace, rita, card, f"CA{tries:032d}")
        power.power_finish(workspace=workspace, user=rita, attempt_id=card.attempt.pk, disposition_id=no_answer.pk,
                           call_sid=call.sid, now=now)
        now += timedelta(minutes=1)
        if tries % 3 == 0:
            now += timedelta(minutes=31)  # campaign_setup: retry no answer after 30 minutes
    assert tries == 6  # three contacts, two attempts each (max_attempts=2)
    assert {(cc.state, cc.attempts, cc.finished_at is not None) for cc in CampaignContact.objects.all()} == {
        ("no_answer", 2, True)}


def test_nobody_is_claimed_outside_the_contacts_window_or_off_the_team():
    workspace, campaign, (rita, bob) = _reps_campaign(window_start=time(9, 0), window_end=time(17, 0))
    assert power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC) is None
    campaign.reps.set([bob])
    with pytest.raises(services.CampaignError):
        power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk,
                         now=MONDAY_14_UTC + timedelta(hours=2))
    assert power.power_next(workspace=workspace, user=bob, campaign_id=campaign.pk,
                            now=MONDAY_14_UTC + timedelta(hours=2)) is not None
    assert list(power.campaigns_for_rep(workspace=workspace, user=rita)) == []


def test_a_claim_never_dialled_runs_out_and_the_attempt_does_not_count():
    workspace, campaign, (rita, _) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)

    services.campaigns_tick(now=MONDAY_14_UTC + services.LEASE + timedelta(seconds=1))

    cc = CampaignContact.objects.get(pk=card.attempt.campaign_contact_id)
    assert (cc.state, cc.attempts, cc.claim) == ("queued", 0, "")
    assert not CampaignAttempt.objects.filter(pk=card.attempt.pk).exists()


def test_a_call_that_never_reached_twilio_gives_the_contact_back_instead_of_closing_the_attempt():
    workspace, campaign, (rita, _) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)

    # The browser's call failed before any CallSid: whatever the rep picks, nobody was called.
    with pytest.raises(power.CallNeverPlaced) as refused:
        power.power_finish(workspace=workspace, user=rita, attempt_id=card.attempt.pk,
                           disposition_id=_disposition(workspace, "no_answer").pk, notes="rang out?", now=MONDAY_14_UTC)

    assert "back to the queue" in str(refused.value) and "does not count" in str(refused.value)
    cc = CampaignContact.objects.get(pk=card.attempt.campaign_contact_id)
    assert (cc.state, cc.attempts, cc.claim, cc.finished_at) == ("queued", 0, "", None)
    assert not CampaignAttempt.objects.filter(pk=card.attempt.pk).exists()
    # The contact is due again at once, as attempt 1 (the limit of 2 is intact).
    again = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    assert (again.attempt.campaign_contact_id, again.attempt.number) == (cc.pk, 1)


def test_the_views_tell_the_rep_the_contact_went_back_when_the_call_never_reached_twilio(client):
    workspace, campaign, (rita, _) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    client.force_login(rita)
    url = reverse("campaigns:power_finish", args=[card.attempt.pk])
    response = client.post(url, {"disposition": _disposition(workspace, "busy").pk, "call_sid": ""})
    assert response.status_code == 200, response.content
    assert response.json()["released"] is True and "does not count" in response.json()["message"]


def test_a_call_never_wrapped_up_is_settled_from_its_status():
    workspace, campaign, (rita, _) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    call = _browser_call(workspace, rita, card, "CA" + "2" * 32)
    call.status = Call.Status.BUSY
    call.save()
    power.power_dialled(workspace=workspace, user=rita, attempt_id=card.attempt.pk, call_sid=call.sid)

    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(minutes=5))
    assert CampaignAttempt.objects.get(pk=card.attempt.pk).ended_at is None  # the rep may still wrap it up
    services.campaigns_tick(now=MONDAY_14_UTC + power.WRAP_UP_LIMIT + timedelta(minutes=1))

    attempt = CampaignAttempt.objects.get(pk=card.attempt.pk)
    assert attempt.outcome == "busy"
    assert CampaignContact.objects.get(pk=card.attempt.campaign_contact_id).state == "busy"


def test_another_reps_call_or_another_number_is_not_linked():
    workspace, campaign, (rita, bob) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    bobs = _browser_call(workspace, bob, card, "CA" + "3" * 32)
    with pytest.raises(services.CampaignError):
        power.power_dialled(workspace=workspace, user=rita, attempt_id=card.attempt.pk, call_sid=bobs.sid)
    with pytest.raises(services.CampaignError):
        power.power_finish(workspace=workspace, user=bob, attempt_id=card.attempt.pk,
                           disposition_id=_disposition(workspace, "busy").pk)


def test_a_disposition_for_a_call_the_call_log_does_not_hold_is_refused_and_nothing_is_closed():
    workspace, campaign, (rita, bob) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    bobs = _browser_call(workspace, bob, card, "CA" + "4" * 32)
    for sid in ("CA" + "9" * 32, bobs.sid):  # unknown, or another rep's call to the same number
        with pytest.raises(services.CampaignError, match="not this contact's call"):
            power.power_finish(workspace=workspace, user=rita, attempt_id=card.attempt.pk,
                               disposition_id=_disposition(workspace, "meeting_booked").pk, notes="?",
                               call_sid=sid, now=MONDAY_14_UTC)
    attempt = CampaignAttempt.objects.get(pk=card.attempt.pk)
    assert (attempt.ended_at, attempt.disposition, attempt.dialer_call_id) == (None, "", None)
    cc = CampaignContact.objects.get(pk=card.attempt.campaign_contact_id)
    assert cc.state == "calling" and cc.lease_until is not None  # the claim still runs out if never linked
    bobs.refresh_from_db()
    assert bobs.disposition_id is None
    # The rep's own call, once in the call log, closes it.
    mine = _browser_call(workspace, rita, card, "CA" + "5" * 32)
    power.power_finish(workspace=workspace, user=rita, attempt_id=card.attempt.pk,
                       disposition_id=_disposition(workspace, "meeting_booked").pk, call_sid=mine.sid,
                       now=MONDAY_14_UTC)
    assert CampaignAttempt.objects.get(pk=card.attempt.pk).dialer_call_id == mine.pk


def test_the_progress_page_and_export_show_reps_results(client):
    workspace, campaign, (rita, _) = _reps_campaign()
    card = power.power_next(workspace=workspace, user=rita, campaign_id=campaign.pk, now=MONDAY_14_UTC)
    call = _browser_call(workspace, rita, card, "CA" + "2" * 32)
    power.power_finish(workspace=workspace, user=rita, attempt_id=card.attempt.pk,
                       disposition_id=_disposition(workspace, "not_interested").pk, notes="Has a supplier",
                       call_sid=call.sid, now=MONDAY_14_UTC)
    client.force_login(rita)

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'data-testid="rep-results"' in page and "Not interested: 1" in page and "Has a supplier" in page
    export = b"".join(client.get(f"/campaigns/{campaign.pk}/export.csv").streaming_content).decode()
    assert "rita,Not interested,Has a supplier" in export
