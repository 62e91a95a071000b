"""Set-up of the campaign tests: a workspace with a sandbox Twilio account, a caller ID, an agent (through the
outbound set-up of tests/api), a contact list and a campaign; and Twilio's side of a campaign call."""
from __future__ import annotations

from datetime import time

from calls.models import CallSession
from calls.services.outbound import amd_result_record, outbound_status_record
from campaigns.models import Campaign, Contact, ContactList
from campaigns.services import time_zone_of
from devtools.twilio_sandbox.outbound import behaviour_of
from telephony.models import OutboundCallPolicy
from tests.api.helpers import CALLER_ID, outbound_setup


def campaign_setup(*, sandbox=None, numbers=(), max_concurrent=2, max_attempts=3, workspace_limit=20, **fields):
    o = outbound_setup(sandbox=sandbox)
    OutboundCallPolicy.objects.update_or_create(workspace=o.workspace,
                                                defaults={"max_concurrent_agent_calls": workspace_limit})
    contact_list = ContactList.objects.create(workspace=o.workspace, name="Leads")
    Contact.objects.bulk_create([Contact(contact_list=contact_list, phone_number=n, name=f"Lead {i}",
                                         fields={"first_name": f"Lead{i}"}, time_zone=time_zone_of(n))
                                 for i, n in enumerate(numbers)])
    defaults = dict(workspace=o.workspace, name="Spring", contact_list=contact_list, agent=o.setup.version.agent,
                    environment=o.setup.environment, version_mode="draft", caller_id=CALLER_ID,
                    window_days=[1, 2, 3, 4, 5, 6, 7], window_start=time(0, 0), window_end=time(23, 59, 59),
                    max_concurrent=max_concurrent, max_attempts=max_attempts, retry_no_answer_minutes=30,
                    retry_busy_minutes=10, retry_voicemail_minutes=None)
    defaults.update(fields)
    return o, Campaign.objects.create(**defaults)


def answer_like_the_sandbox(session: CallSession) -> str:
    """Twilio's callbacks for one placed call, as the sandbox's number patterns decide (person, machine, busy,
    no answer, failed), delivered to the app's own callback services."""
    behaviour = behaviour_of(session.to_number)
    if behaviour in ("busy", "no-answer"):
        outbound_status_record(session=session, params={"CallStatus": "ringing"})
        outbound_status_record(session=session, params={"CallStatus": behaviour})
    elif behaviour == "failed":
        outbound_status_record(session=session, params={"CallStatus": "failed"})
    else:
        outbound_status_record(session=session, params={"CallStatus": "in-progress"})
        amd_result_record(session=session, params={
            "AnsweredBy": "machine_end_beep" if behaviour == "machine" else "human"})
        outbound_status_record(session=session, params={"CallStatus": "completed"})
    return behaviour


def answer_placed_calls() -> int:
    """Answer every call Twilio has been asked to place (its CallSid is known) and that has not ended."""
    n = 0
    for session in CallSession.objects.filter(direction=CallSession.OUTBOUND, ended_at__isnull=True).exclude(
            call_sid__startswith="pending-"):
        answer_like_the_sandbox(session)
        n += 1
    return n
