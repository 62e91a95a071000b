"""Done-when of issue 24: a 200-contact campaign, concurrency 10, two real Celery worker processes, one killed with
SIGKILL in the middle of a claim. The test plays beat (ticks with a fake clock) and Twilio's callbacks (the
sandbox's outcomes by number pattern, delivered to the app's callback services); the workers dial the sandbox.

Worker A's Twilio is a black hole (it takes the request and never answers): the first time it is asked to dial,
worker A has claimed a contact and written its call, and is killed there."""
from __future__ import annotations

import os
import signal
import socket
import threading
from collections import defaultdict
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import phonenumbers
import pytest

from calls.models import CallSession
from campaigns import tasks
from campaigns.models import Campaign, CampaignAttempt, CampaignContact
from campaigns.services import campaign_start, in_window
from tests.campaigns.helpers import answer_placed_calls, campaign_setup
from tests.fixtures_celery import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 12, 7, 14, 0, tzinfo=dt_timezone.utc)  # a Monday: 09:00 in New York, 06:00 in Los Angeles
AREAS = ("212", "312", "303", "213")  # New York, Chicago, Denver, Los Angeles
OUTCOMES = ("10", "66", "77", "88", "99")  # person, machine, busy, no answer, failed (the sandbox's patterns)
FINAL = {"answered", "voicemail", "busy", "no_answer", "failed", "done", "dnc"}


class BlackHole:
    """A TCP server on loopback that reads requests and never answers them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.hit = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                if conn.recv(65536):
                    self.hit.set()
            except OSError:
                pass

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


def _numbers():
    numbers = [f"+1{area}555{i:02d}{OUTCOMES[i % 5]}" for area in AREAS for i in range(50)]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    return numbers


def test_two_workers_one_killed_mid_claim_every_contact_ends_once_within_limits(celery_worker, twilio_sandbox):
    _, campaign = campaign_setup(
        sandbox=twilio_sandbox, numbers=_numbers(), max_concurrent=10, max_attempts=3, workspace_limit=20,
        window_days=[1, 2, 3, 4, 5], window_start=time(9), window_end=time(17),
        retry_no_answer_minutes=30, retry_busy_minutes=10)
    campaign_start(campaign=campaign, now=START)
    hole = BlackHole()
    fast = {"CAMPAIGNS_CALLS_PER_SECOND": "1000"}
    doomed = celery_worker({**fast, "TWILIO_API_BASE_URL": hole.url})
    survivor = celery_worker(fast)

    now, live_peak, calling_peak = START, 0, 0
    try:
        def settled(ids) -> bool:
            """Every tick sent at this step has finished, or died with worker A: the fake clock may move on only
            then (a tick still running when the clock jumps past its lease would look like a dead worker's)."""
            if doomed.alive and hole.hit.is_set():
                os.killpg(doomed.popen.pid, signal.SIGKILL)  # mid-claim: the contact claimed, its call written
                doomed.popen.wait(10)
            logs = survivor.log() + doomed.log()
            return all(f"[{i}] succeeded" in logs or (not doomed.alive and f"[{i}] received" in doomed.log())
                       for i in ids)

        for step in range(400):
            ids = [tasks.campaigns_tick.delay(now=now.isoformat()).id for _ in range(2)]
            wait_for(lambda ids=ids: settled(ids), timeout=60, message=f"the ticks at step {step}")
            calling_peak = max(calling_peak, CampaignContact.objects.filter(state="calling").count())
            live_peak = max(live_peak, CallSession.objects.filter(ended_at__isnull=True).exclude(
                call_sid__startswith="pending-").count())
            answer_placed_calls()
            if not CampaignContact.objects.filter(finished_at__isnull=True).exists():
                break
            now += timedelta(minutes=4)
        else:
            pytest.fail("the campaign did not finish")
    finally:
        hole.close()

    assert not doomed.alive and hole.hit.is_set(), "worker A was not killed mid-claim"
    assert survivor.alive
    contacts = list(CampaignContact.objects.select_related("contact"))
    # Every contact ends in exactly one final state.
    assert len(contacts) == 200 == len({c.contact_id for c in contacts})
    assert all(c.finished_at is not None and c.state in FINAL for c in contacts)
    # Attempts never exceed the limit, and each one is recorded once.
    attempts = defaultdict(list)
    for a in CampaignAttempt.objects.order_by("number"):
        attempts[a.campaign_contact_id].append(a)
    assert all(c.attempts <= 3 and [a.number for a in attempts[c.pk]] == list(range(1, c.attempts + 1))
               for c in contacts)
    # Nothing is dialled outside the contact's window (in its local time, by the fake clock).
    for c in contacts:
        assert all(in_window(campaign, c.time_zone, a.started_at) for a in attempts[c.pk]), c.contact.phone_number
    # No contact is dialled twice at once: one call after the other, and Twilio asked once per call.
    sessions = defaultdict(list)
    for s in CallSession.objects.order_by("started_at", "pk"):
        sessions[s.to_number].append(s)
    for number, calls in sessions.items():
        for earlier, later in zip(calls, calls[1:]):
            assert earlier.ended_at is not None and earlier.ended_at <= later.started_at, number
    posted = defaultdict(int)
    for _, _, form in twilio_sandbox.requests_to(r"/Calls\.json$", "POST"):
        posted[form["To"]] += 1
    assert posted == {n: len([s for s in calls if not s.call_sid.startswith("pending-")])
                      for n, calls in sessions.items() if any(not s.call_sid.startswith("pending-") for s in calls)}
    # The concurrency limit held (and was reached).
    assert calling_peak == 10 and live_peak <= 10
    # The call worker A wrote before it died was found by the next claim's recovery (never dialled again): its
    # final callback never comes, so it is closed as failed once it is too old.
    stuck = CallSession.objects.filter(call_sid__startswith="pending-", rejected_reason="").get()
    stuck_contact = CampaignContact.objects.get(contact__phone_number=stuck.to_number)
    assert [a.call_session_id for a in attempts[stuck_contact.pk]][-1] == stuck.pk
    assert stuck_contact.state == "failed" and posted.get(stuck.to_number, 0) == len(sessions[stuck.to_number]) - 1
    # The outcomes are the sandbox's: persons answered, machines got voicemail, busy and no-answer were retried.
    by_pattern = defaultdict(set)
    for c in contacts:
        if c.pk != stuck_contact.pk:
            by_pattern[c.contact.phone_number[-2:]].add((c.state, c.attempts))
    assert by_pattern["10"] <= {("answered", 1)} and by_pattern["66"] <= {("voicemail", 1)}
    assert by_pattern["77"] <= {("busy", 3)} and by_pattern["88"] <= {("no_answer", 3)}
    assert by_pattern["99"] <= {("failed", 1)}
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
