"""A rep works a campaign in the browser's power dialer against the sandbox (its Voice SDK signalling, its people
and machine by number): three contacts with dispositions and notes, one of them a voicemail drop."""
from __future__ import annotations

import io
import wave
from datetime import time

import pytest

from campaigns import services
from campaigns.models import Campaign, CampaignAttempt, Contact, ContactList
from dialer.dispositions import voicemail_message_save
from dialer.models import Call
from tests.dialer import test_dialer_calls_browser as calls_browser
from tests.dialer.test_dialer_calls_browser import NUMBER, _rep_page, _state, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The dialer's browser-call fixtures: the sandbox with its Voice SDK signalling, Chromium with a fake microphone.
sandboxed = calls_browser.sandboxed
chromium_with_mic = calls_browser.chromium_with_mic

# The sandbox's people by number (devtools/twilio_sandbox/signalling.py PEOPLE): answers, busy, a machine.
CONTACTS = [("+15125550123", "Ann Lee", {"company": "Acme"}), ("+15125550186", "Ben Cho", {"company": "Birch"}),
            ("+15125550188", "Cat Diaz", {"company": "Cedar"})]


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 8000)
    return out.getvalue()


@pytest.fixture
def campaign(sandboxed, workspace):
    contact_list = ContactList.objects.create(workspace=workspace, name="Leads")
    for number, name, fields in CONTACTS:
        Contact.objects.create(contact_list=contact_list, phone_number=number, name=name, fields=fields,
                               time_zone=services.time_zone_of(number))
    campaign = Campaign.objects.create(
        workspace=workspace, name="Spring outreach", contact_list=contact_list, worked_by=Campaign.WorkedBy.REPS,
        caller_id=NUMBER, window_days=[1, 2, 3, 4, 5, 6, 7], window_start=time(0, 0), window_end=time(23, 59, 59),
        max_attempts=2, retry_busy_minutes=10)
    voicemail_message_save(workspace=workspace, data=_wav(), content_type="audio/wav", file_name="hello.wav")
    return services.campaign_start(campaign=campaign)


def _wrap_up(page, disposition: str, notes: str, button: str = "power-save"):
    page.locator("[data-testid=power-wrap]").wait_for()
    if disposition:
        page.select_option("[data-testid=power-disposition]", label=disposition)
    page.fill("[data-testid=power-notes]", notes)
    page.click(f"[data-testid={button}]")


def test_a_rep_works_three_contacts_with_dispositions_notes_and_a_voicemail_drop(
        chromium_with_mic, sandboxed, campaign, live_server, workspace):
    sandbox, _ = sandboxed
    page = _rep_page(chromium_with_mic, live_server, workspace, "rita")
    page.click("[data-testid=dialer-toggle]")
    page.locator("[data-testid=power-start]").wait_for()
    page.select_option("[data-testid=power-campaign]", label="Spring outreach")
    page.click("[data-testid=power-go]")

    # 1. A person answers: the card shows while it rings and during the call; the rep hangs up and books a meeting.
    page.wait_for_function("() => document.querySelector('[data-testid=power-name]').textContent === 'Ann Lee'")
    assert "Acme" in page.locator("[data-testid=power-fields]").inner_text()
    _state(page, "In call")
    page.click("[data-role=hangup]")
    _wrap_up(page, "Meeting booked", "Demo on Tuesday")

    # 2. Busy: the call ends by itself; the card of the next contact comes after the wrap-up.
    page.wait_for_function("() => document.querySelector('[data-testid=power-name]').textContent === 'Ben Cho'")
    _wrap_up(page, "Busy", "Try after lunch")

    # 3. A machine answers: Drop voicemail plays the message to it and frees the rep at once.
    page.wait_for_function("() => document.querySelector('[data-testid=power-name]').textContent === 'Cat Diaz'")
    _state(page, "In call")
    page.locator("[data-testid=power-drop]").wait_for()
    page.click("[data-testid=power-drop]")
    page.locator("[data-testid=power-wrap]").wait_for()
    assert page.locator("[data-testid=power-disposition] option:checked").inner_text() == "Left voicemail"
    _wrap_up(page, "", "Left the spring offer", button="power-stop")
    page.wait_for_function("() => document.querySelector('[data-testid=power-status]').textContent.startsWith('Stopped')")

    attempts = {a.campaign_contact.contact.name: a for a in
                CampaignAttempt.objects.select_related("campaign_contact__contact", "dialer_call")}
    assert {name: (a.disposition, a.notes, a.outcome) for name, a in attempts.items()} == {
        "Ann Lee": ("Meeting booked", "Demo on Tuesday", "answered"),
        "Ben Cho": ("Busy", "Try after lunch", "busy"),
        "Cat Diaz": ("Left voicemail", "Left the spring offer", "voicemail")}
    assert all(a.dialer_call is not None and a.dialer_call.caller_id == NUMBER for a in attempts.values())
    assert attempts["Ben Cho"].campaign_contact.finished_at is None  # busy: retried after 10 minutes
    dropped = Call.objects.get(pk=attempts["Cat Diaz"].dialer_call_id)
    assert dropped.voicemail_dropped_at is not None and dropped.disposition.name == "Left voicemail"
    machine = sandbox.simulated[dropped.sid]  # the browser call whose dialled leg was the machine
    played = wait_for(lambda: [e for e in machine.events if e["event"] == "leg_play"], what="the message played")
    assert played[0]["status"] == 200 and played[0]["bytes"] > 1000 and played[0]["heard_by"] == "voicemail"
    assert not page.console_errors, page.console_errors
    page.context.close()
