"""Agent → rep in a campaign: the agent that calls the campaign's contacts hands a qualified one over live to the
campaign's reps (a "dialer reps" handover): only the campaign's reps ring, and their card names the contact."""
import time
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest

from agents.models import HandoverAction
from calls.engine.context import HandoverActionSpec
from calls.models import CallSession
from calls.services import rep_transfers, transfers
from campaigns import services
from telephony import presence
from tests.campaigns.helpers import campaign_setup
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MONDAY_14_UTC = datetime(2026, 12, 7, 14, 0, tzinfo=dt_timezone.utc)


def _online_rep(workspace, username):
    user = UserFactory(username=username)
    MembershipFactory(workspace=workspace, user=user)
    presence.presence_mark(workspace_id=workspace.pk, user_id=user.pk, until=int(time.time()) + 600)
    return user


def test_a_campaign_agent_hands_a_qualified_contact_to_the_campaigns_reps(twilio_sandbox, settings):
    settings.CAMPAIGNS_CALLS_PER_SECOND = 1000
    o, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=["+12125550110"])
    rita, _bob = _online_rep(o.workspace, "rita"), _online_rep(o.workspace, "bob")  # both online
    campaign.handover_reps = [rita.pk]
    campaign.save(update_fields=["handover_reps"])
    HandoverAction.objects.filter(version=o.setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.REPS, destination="")
    services.campaign_start(campaign=campaign, now=MONDAY_14_UTC)

    assert services.campaigns_tick(now=MONDAY_14_UTC)["dialled"] == 1
    session = CallSession.objects.get(to_number="+12125550110")
    assert session.metadata["reps"] == [rita.pk]

    handover = rep_transfers.reps_handover_record(
        call_session_id=session.pk, action=HandoverActionSpec("transfer_to_sales", "", kind="reps"),
        transport="media_streams")

    assert [(a["rep"], a["user_id"]) for a in handover.attempts] == [("rita", rita.pk)]  # not bob
    assert "Lead 0" in transfers.brief_text(call_session_id=session.pk)
    handover.attempts[0]["call_sid"] = "CA" + "1" * 32
    handover.save(update_fields=["attempts"])
    card = rep_transfers.offer_for(user_id=rita.pk, workspace_id=o.workspace.pk, call_sid="CA" + "1" * 32)
    assert card["caller_name"] == "Lead 0" and card["contact"]["first_name"] == "Lead0"
