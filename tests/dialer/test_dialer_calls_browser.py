"""Real browser calls against the sandbox: Chromium's fake microphone, the real Voice SDK, the sandbox's signalling
(devtools/twilio_sandbox/signalling.py) and its WebRTC peer (media.py), the app's real webhooks on live_server.

Audio is measured in the page with the SDK's own `volume` event (input: the fake microphone; output: what the far
side says), and on the sandbox's side by its peer (frames of the browser's microphone that carried voice)."""
from __future__ import annotations

import time

import pytest

from config.settings.base import content_security_policy
from devtools.twilio_sandbox.signalling import RingingCall
from dialer.models import Call, Voicemail
from telephony import services as telephony_services
from telephony.models import PhoneNumber
from tests.dialer.settings_helpers import connect_byok
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import CHROMIUM_ARGS, CHROMIUM_PATH, _manager, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NUMBER = "+15125550100"
BROWSER_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required", "--ignore-certificate-errors"]
LISTEN = """() => {
  const call = window.CallwellDialer.activeCall();
  window.__audio = { out: 0, in: 0 };
  call.on("volume", (input, output) => {
    window.__audio.in = Math.max(window.__audio.in, input);
    window.__audio.out = Math.max(window.__audio.out, output);
  });
}"""


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def sandboxed(workspace, twilio_sandbox, settings, live_server, django_capture_on_commit_callbacks):
    """The workspace connected to a sandbox account whose number rings the dialer's TwiML app; the app is served by
    live_server, which the sandbox's webhooks reach."""
    settings.PUBLIC_BASE_URL = live_server.url
    signalling = twilio_sandbox.signalling.host
    settings.TWILIO_SANDBOX_SIGNALLING = signalling
    settings.CONTENT_SECURITY_POLICY = content_security_policy(live_server.url, signalling)
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks, numbers=(NUMBER,))
    number = PhoneNumber.objects.get(workspace=workspace, phone_number=NUMBER)
    telephony_services.number_route_to_dialer(workspace=workspace, number_id=number.pk)
    return twilio_sandbox, sid


def _rep_page(browser, live_server, workspace, username):
    """A logged-in rep's page (own context) whose dialer registered with the sandbox."""
    MembershipFactory(workspace=workspace, user=UserFactory(username=username))
    context = browser.new_context(base_url=live_server.url, ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.console_errors, page.console_log = [], []
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.on("console", lambda msg: page.console_log.append(f"{msg.type}: {msg.text}"))
    login(page, live_server, username)
    page.goto(live_server.url + "/calls/")
    page.wait_for_function("() => document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    return page


@pytest.fixture
def chromium_with_mic(_browser):
    """A chromium whose microphone is Chromium's fake device (its own process: the flags are per browser)."""
    browser = _manager.playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True,
                                                  args=CHROMIUM_ARGS + BROWSER_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def call_page(chromium_with_mic, sandboxed, live_server, workspace):
    page = _rep_page(chromium_with_mic, live_server, workspace, "rita")
    yield page
    page.context.close()


def _state(page, text):
    page.wait_for_function(f"() => document.querySelector('[data-testid=dialer-state]').textContent === {text!r}")


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def test_a_rep_calls_a_sandbox_person_hears_the_greeting_presses_a_key_and_hangs_up(call_page, sandboxed,
                                                                                    live_server):
    sandbox, _ = sandboxed
    page = call_page
    assert page.locator("[data-testid=dialer-sandbox-note]").count() == 0  # signalling works offline
    page.click("[data-testid=dialer-toggle]")
    page.fill("#dialer-number", "+15125550123")
    page.click("[data-role=call]")
    _state(page, "In call")
    page.evaluate(LISTEN)
    page.wait_for_function("() => window.__audio.out > 0.05")  # the person's greeting, heard in the page
    call = next(iter(sandbox.simulated.values()))
    page.click("[data-digit='5']")
    wait_for(lambda: _events(call, "dtmf"), what="the key at the far side")
    assert _events(call, "dtmf")[0]["digits"] == "5"
    wait_for(lambda: call.peer.heard_voice_frames > 0, what="the rep's voice at the far side")
    page.click("[data-role=hangup]")
    _state(page, "Call ended")
    assert call.done.wait(20), call.events
    dial = _events(call, "dial")[0]
    assert dial["outcome"] == "completed" and dial["digits"] == "5"
    assert dial["heard_voice_frames"] > 0  # the rep's microphone reached the far side

    logged = wait_for(lambda: Call.objects.filter(sid=call.call_sid, duration__isnull=False).first(),
                      what="the call's status callback")
    assert logged.direction == Call.Direction.OUTBOUND and logged.to_number == "+15125550123"
    page.goto(live_server.url + "/calls/")
    row = page.locator("tr", has_text="+15125550123").first
    assert f"{logged.duration} s" in row.inner_text()
    assert not page.console_errors, page.console_errors


def test_a_call_to_the_reps_number_rings_the_browser_and_a_missed_one_goes_to_voicemail(call_page, sandboxed,
                                                                                       monkeypatch):
    sandbox, sid = sandboxed
    page = call_page
    call = sandbox.simulate_call(sid, NUMBER, from_="+13105550111", say="Hello, I am calling about my order.")
    wait_for(lambda: _events(call, "ringing_browser") or call.done.is_set(), what="the browser ringing")
    assert _events(call, "ringing_browser"), call.events
    try:
        page.locator("[data-testid=dialer-incoming]").wait_for()
    except Exception:
        raise AssertionError("\n".join(page.console_log[-30:])) from None
    assert "+13105550111" in page.locator("[data-testid=dialer-incoming]").inner_text()
    page.click("[data-role=accept]")
    _state(page, "In call")
    page.evaluate(LISTEN)
    page.wait_for_function("() => window.__audio.out > 0.05")  # the caller's sentence
    page.wait_for_function("() => window.__audio.in > 0")  # the rep talks (the fake microphone)
    wait_for(lambda: call.peer.heard_voice_frames > 0, what="the rep's voice at the caller's side")
    page.click("[data-role=hangup]")
    _state(page, "Call ended")
    assert call.done.wait(20), call.events
    dial = _events(call, "dial")[0]
    assert dial["outcome"] == "completed" and dial["heard_voice_frames"] > 0
    assert Call.objects.get(sid=call.call_sid).direction == Call.Direction.INBOUND

    monkeypatch.setattr("dialer.webhooks.INBOUND_RING_SECONDS", 5)  # (the SDK shows a call <= 2 s after its invite)
    missed = sandbox.simulate_call(sid, NUMBER, from_="+13105550112", say="Please call me back.")
    assert missed.done.wait(30), missed.events
    assert _events(missed, "ringing_browser")  # it rang the browser (shown, or not yet, when the SDK got cancel)
    page.locator("[data-testid=dialer-incoming]").wait_for(state="hidden")  # the caller was sent to voicemail
    assert _events(missed, "dial")[0]["outcome"] == "no-answer"
    assert _events(missed, "record")
    wait_for(lambda: Voicemail.objects.filter(call_sid=missed.call_sid).exists(), what="the voicemail")
    assert not page.console_errors, page.console_errors


def test_a_rep_calls_the_workspace_number_and_another_reps_browser_answers(call_page, chromium_with_mic, sandboxed,
                                                                          live_server, workspace):
    sandbox, _ = sandboxed
    page, other = call_page, _rep_page(chromium_with_mic, live_server, workspace, "bob")
    page.click("[data-testid=dialer-toggle]")
    page.fill("#dialer-number", NUMBER)  # the workspace's own number: its TwiML rings the reps who are free
    page.click("[data-role=call]")
    other.locator("[data-testid=dialer-incoming]").wait_for()
    other.click("[data-role=accept]")
    _state(other, "In call")
    _state(page, "In call")
    page.evaluate(LISTEN)
    other.evaluate(LISTEN)
    page.wait_for_function("() => window.__audio.out > 0.05")  # bob's microphone, heard by rita
    other.wait_for_function("() => window.__audio.out > 0.05")  # and the other way round
    page.click("[data-role=hangup]")
    _state(other, "Call ended")
    inner = next(c for c in sandbox.simulated.values() if isinstance(c, RingingCall))  # the call to the number
    assert inner.done.wait(20), inner.events
    assert [e for e in inner.events if e["event"] == "dial"][0]["outcome"] == "completed"
    assert Call.objects.filter(sid=inner.call_sid, direction=Call.Direction.INBOUND).exists()
    assert not page.console_errors and not other.console_errors
    other.context.close()
