"""A small campaign end to end on the sandbox: the scheduler dials through `agent_call_place`, Twilio (the
sandbox) rings a person, an answering machine and a busy line, and the app's real signed callbacks and
websockets (uvicorn on loopback) write the outcomes the scheduler reads back."""
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from calls.models import CallSession
from campaigns import services
from campaigns.models import Campaign, CampaignContact
from tests.calls.engine.conftest import asgi_server  # noqa: F401 (fixture)
from tests.campaigns.helpers import campaign_setup
from tests.fixtures_celery import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 12, 7, 15, 0, tzinfo=dt_timezone.utc)


def test_a_person_a_machine_and_a_busy_line_end_as_answered_voicemail_and_busy(asgi_server, twilio_sandbox,  # noqa: F811
                                                                                settings):
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    settings.CAMPAIGNS_CALLS_PER_SECOND = 1000
    _, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110", "+12125550166", "+12125550177"],
                                 max_concurrent=3, max_attempts=2, retry_busy_minutes=10)
    services.campaign_start(campaign=campaign, now=START)

    now = START
    for _ in range(6):
        services.campaigns_tick(now=now)
        for call in list(twilio_sandbox.simulated.values()):
            assert call.done.wait(60), call.events
        wait_for(lambda: not CallSession.objects.filter(ended_at__isnull=True).exists(), timeout=60,
                 message="every call ended")
        now += timedelta(minutes=15)
    services.campaigns_tick(now=now)

    states = dict(CampaignContact.objects.values_list("contact__phone_number", "state"))
    assert states == {"+12125550110": "answered", "+12125550166": "voicemail", "+12125550177": "busy"}
    assert dict(CampaignContact.objects.values_list("contact__phone_number", "attempts")) == {
        "+12125550110": 1, "+12125550166": 1, "+12125550177": 2}
    person = CallSession.objects.get(to_number="+12125550110")
    assert person.answered_by == "human" and person.variables["first_name"] == "Lead0"
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
