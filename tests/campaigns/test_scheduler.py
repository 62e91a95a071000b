"""The scheduler in one process, on the sandbox: claims, attempts per outcome, retries, windows, limits."""
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import pytest

from calls.models import CallSession
from campaigns import services
from campaigns.models import Campaign, CampaignAttempt, CampaignContact
from telephony.models import DoNotCallNumber
from tests.campaigns.helpers import answer_placed_calls, campaign_setup

pytestmark = pytest.mark.django_db

MONDAY_14_UTC = datetime(2026, 12, 7, 14, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def _fast_pacing(settings):
    settings.CAMPAIGNS_CALLS_PER_SECOND = 1000


def _run(campaign, start, *, steps=40, step=timedelta(minutes=5)):
    now = start
    for _ in range(steps):
        services.campaigns_tick(now=now)
        answer_placed_calls()
        now += step
    services.campaigns_tick(now=now)
    return now


def test_each_outcome_ends_in_its_final_state_after_at_most_the_allowed_attempts(twilio_sandbox):
    numbers = ["+12125550110", "+12125550166", "+12125550177", "+12125550188", "+12125550199"]
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=numbers, max_concurrent=2, max_attempts=3)
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)

    _run(campaign, MONDAY_14_UTC)

    states = {cc.contact.phone_number: (cc.state, cc.attempts, cc.finished_at is not None)
              for cc in CampaignContact.objects.select_related("contact")}
    assert states == {"+12125550110": ("answered", 1, True), "+12125550166": ("voicemail", 1, True),
                      "+12125550177": ("busy", 3, True), "+12125550188": ("no_answer", 3, True),
                      "+12125550199": ("failed", 1, True)}
    assert CallSession.objects.count() == 9 == CampaignAttempt.objects.count()
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
    # The contact's fields are the call's variables.
    assert CallSession.objects.filter(to_number="+12125550110").get().variables["first_name"] == "Lead0"


def test_the_concurrency_limit_and_the_workspace_limit_cap_calls_at_once(twilio_sandbox):
    numbers = [f"+1212555{n:04d}" for n in range(110, 130)]
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=numbers, max_concurrent=8, workspace_limit=3)
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)

    result = services.campaigns_tick(now=MONDAY_14_UTC)

    assert result["dialled"] == 3
    assert CampaignContact.objects.filter(state="calling").count() == 3
    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(seconds=5))
    assert CampaignContact.objects.filter(state="calling").count() == 3


def test_contacts_are_called_only_inside_their_own_local_window(twilio_sandbox):
    new_york, los_angeles = "+12125550110", "+12135550110"
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=[new_york, los_angeles], max_concurrent=5,
                                 window_days=[1, 2, 3, 4, 5], window_start=time(9), window_end=time(17))
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)

    services.campaigns_tick(now=MONDAY_14_UTC)  # 09:00 in New York, 06:00 in Los Angeles
    assert list(CallSession.objects.values_list("to_number", flat=True)) == [new_york]
    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(hours=3))  # 09:00 in Los Angeles
    assert sorted(CallSession.objects.values_list("to_number", flat=True)) == sorted([new_york, los_angeles])


def test_do_not_call_contacts_are_never_dialled(twilio_sandbox):
    o, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110", "+12125550111"])
    DoNotCallNumber.objects.create(workspace=o.workspace, phone_number="+12125550111")
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)

    _run(campaign, MONDAY_14_UTC, steps=3)

    assert list(CallSession.objects.values_list("to_number", flat=True)) == ["+12125550110"]
    assert CampaignContact.objects.get(contact__phone_number="+12125550111").state == "dnc"


def test_pause_stops_new_calls_resume_goes_on_cancel_finishes_the_rest(twilio_sandbox):
    numbers = [f"+1212555{n:04d}" for n in range(110, 116)]
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=numbers, max_concurrent=2)
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    services.campaigns_tick(now=MONDAY_14_UTC)
    services.campaign_pause(campaign=campaign)
    answer_placed_calls()
    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(minutes=1))
    assert CallSession.objects.count() == 2
    assert CampaignContact.objects.filter(state="answered").count() == 2  # calls in progress were settled

    services.campaign_resume(campaign=campaign)
    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(minutes=2))
    assert CallSession.objects.count() == 4
    services.campaign_cancel(campaign=campaign)
    answer_placed_calls()
    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(minutes=3))
    assert dict(CampaignContact.objects.values_list("state").annotate().values_list("state", "pk")) != {}
    assert CampaignContact.objects.filter(finished_at__isnull=True).count() == 0
    assert CampaignContact.objects.filter(state="done").count() == 2


def test_a_claim_whose_worker_died_before_dialling_is_given_back(twilio_sandbox):
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110"])
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    cc = CampaignContact.objects.get()
    assert services._claim(cc.pk, MONDAY_14_UTC)  # the worker dies here
    assert services._claim(cc.pk, MONDAY_14_UTC) is None  # nobody else takes it while the lease runs

    services.campaigns_tick(now=MONDAY_14_UTC + timedelta(seconds=30))
    assert CallSession.objects.count() == 0
    services.campaigns_tick(now=MONDAY_14_UTC + services.LEASE + timedelta(seconds=1))
    cc.refresh_from_db()
    assert CallSession.objects.count() == 1 and cc.attempts == 1 and cc.state == "calling"


def test_a_claim_whose_worker_died_after_dialling_finds_its_call(twilio_sandbox):
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110"])
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    cc = CampaignContact.objects.get()
    claim = services._claim(cc.pk, MONDAY_14_UTC)
    services._dial(campaign, cc.pk, claim, MONDAY_14_UTC)
    # The worker died before recording the session on its claim: undo that part.
    CampaignAttempt.objects.update(call_session=None)
    CampaignContact.objects.update(lease_until=MONDAY_14_UTC + services.LEASE)

    services.campaigns_tick(now=MONDAY_14_UTC + services.LEASE + timedelta(seconds=1))

    assert CallSession.objects.count() == 1
    assert CampaignAttempt.objects.get().call_session_id == CallSession.objects.get().pk


def test_a_campaign_for_reps_starts_and_the_scheduler_never_dials_it(twilio_sandbox):
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110"], worked_by="reps")
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    assert services.campaigns_tick(now=MONDAY_14_UTC)["dialled"] == 0  # reps claim from the dialer (power.py)
    assert Campaign.objects.get(pk=campaign.pk).status == "running" and not CallSession.objects.exists()
    assert CampaignContact.objects.get().state == "queued"


def test_the_time_zones_of_the_contacts_are_fixed_when_the_campaign_starts(twilio_sandbox):
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110", "+12135550110", "+12125550111"])
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)
    assert Campaign.objects.get(pk=campaign.pk).time_zones == ["America/Los_Angeles", "America/New_York"]
