"""The sandbox's conference audio (devtools/twilio_sandbox/conference.py): who hears whom. A muted or held
participant is not heard, a held one hears nothing, a coaching participant is heard only by the one it coaches."""
import threading
from collections import defaultdict

from devtools.twilio_sandbox import conference
from devtools.twilio_sandbox.media import tone_pcm
from tests.conditions import eventually


class FakeSandbox:
    def __init__(self):
        self.lock = threading.RLock()
        self.state = {"conferences": defaultdict(dict)}


class Talker:
    """Always says a loud tone; keeps what it is given to play."""

    def __init__(self):
        self.frame = tone_pcm(seconds=0.02)[:conference.FRAME_BYTES]
        self.played = 0

    def pull(self):
        return self.frame

    def push(self, pcm):
        self.played += 1


def wait_for(predicate, what):
    assert eventually(predicate, interval=0.02), f"{what} never happened"


def _conference(sandbox, participants):
    conf = {"sid": "CF1", "account_sid": "AC1", "friendly_name": "dialer-CA1", "status": "in-progress", "log": [],
            "participants": {sid: {"muted": False, "hold": False, "coaching": False, "call_sid_to_coach": None,
                                   **attrs} for sid, attrs in participants.items()}}
    sandbox.state["conferences"]["AC1"]["CF1"] = conf
    return conf


def test_a_coach_is_heard_only_by_the_rep_and_muted_or_held_legs_by_nobody():
    sandbox = FakeSandbox()
    conf = _conference(sandbox, {"rep": {}, "customer": {}, "coach": {"coaching": True, "call_sid_to_coach": "rep"},
                                 "listener": {"muted": True}, "held": {"hold": True}})
    audio = conference.audio_of(sandbox, "AC1", "CF1")
    endpoints = {sid: Talker() for sid in conf["participants"]}
    for sid, endpoint in endpoints.items():
        audio.attach(sid, endpoint)
    try:
        wait_for(lambda: audio.heard["rep"]["coach"] > 10 and audio.heard["customer"]["rep"] > 10, "the mix")
        assert audio.heard["customer"]["coach"] == 0
        assert audio.heard["coach"]["customer"] > 0 and audio.heard["listener"]["rep"] > 0  # they hear the call
        assert all(audio.heard[who]["listener"] == 0 and audio.heard[who]["held"] == 0 for who in endpoints)
        assert endpoints["held"].played == 0

        with sandbox.lock:  # barge: an ordinary participant again
            conf["participants"]["coach"]["coaching"] = False
        wait_for(lambda: audio.heard["customer"]["coach"] > 10, "the customer hearing the barge")
    finally:
        with sandbox.lock:
            conf["status"] = "completed"
        wait_for(lambda: audio.thread is None, "the mixer stopping")
