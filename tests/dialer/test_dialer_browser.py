"""The dialer panel in Debian's chromium, up to the Twilio SDK boundary.

Twilio's signalling servers are unreachable here, so a fake `window.Twilio.Device` is injected before the
page's scripts (the real SDK keeps an existing `Twilio.Device`). The fake records `updateToken` and
`connect` calls and lets the test emit `tokenWillExpire`, `incoming` and call events. Timers run on
Playwright's clock (`page.clock.install()` / `fast_forward`).
"""
import time

import pytest

from tests.dialer.voice_fixtures import ready_workspace
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAKE_TWILIO = """
(() => {
  const fake = { devices: [], updateTokenCalls: [], connectCalls: [], calls: [] };
  class Emitter {
    constructor() { this.handlers = {}; }
    on(event, fn) { (this.handlers[event] = this.handlers[event] || []).push(fn); return this; }
    emit(event, ...args) { (this.handlers[event] || []).forEach((fn) => fn(...args)); }
  }
  class FakeCall extends Emitter {
    constructor(params) { super(); this.parameters = params || {}; this.muted = false; this.digits = []; }
    mute(value) { this.muted = value !== false; this.emit("mute", this.muted, this); }
    isMuted() { return this.muted; }
    sendDigits(d) { this.digits.push(d); }
    disconnect() { this.emit("disconnect", this); }
    accept() { this.emit("accept", this); }
    reject() { this.emit("reject"); }
  }
  class FakeDevice extends Emitter {
    constructor(token, options) { super(); this.token = token; this.options = options; fake.devices.push(this); }
    register() { setTimeout(() => this.emit("registered"), 0); return Promise.resolve(); }
    updateToken(token) { this.token = token; fake.updateTokenCalls.push(token); }
    connect(options) {
      fake.connectCalls.push(options);
      const call = new FakeCall({});
      fake.calls.push(call);
      return Promise.resolve(call);
    }
    destroy() {}
  }
  fake.FakeCall = FakeCall;
  window.__twilioFake = fake;
  window.Twilio = { Device: FakeDevice };
})();
"""


def wait_until(page, expression: str, timeout: float = 10.0):
    """Poll from Python (the page's own timers are faked)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression!r} (last value {value!r})")
        time.sleep(0.05)


def settle(page):
    """A barrier, not a pause: the page fetches a marker URL. Playwright reports requests in the order the page
    issues them, so once the marker is seen, every request the page started before it (timers run synchronously
    under the fake clock) has been seen too."""
    with page.expect_request(lambda r: "/healthz?settle" in r.url):
        page.evaluate("fetch('/healthz?settle').then(r => r.status)")


@pytest.fixture
def rep(db):
    user = UserFactory(username="rita")
    return user


@pytest.fixture
def dialer_page(browser_page, live_server, rep, workspace):
    MembershipFactory(workspace=workspace, user=rep)
    ready_workspace(workspace, numbers=("+15125550100", "+14155550100"), verified=("+13105550111",))
    token_requests = []
    browser_page.on("request", lambda r: token_requests.append(r.url) if "/v1/voice/token" in r.url else None)
    browser_page.add_init_script(FAKE_TWILIO)
    browser_page.clock.install()
    login(browser_page, live_server, "rita")  # lands on a page with the dialer, which fetches its own token
    token_requests.clear()
    browser_page.goto(live_server.url + "/calls/")
    browser_page.token_requests = token_requests
    return browser_page


def test_ctrl_d_opens_the_dialer_and_lists_caller_ids(dialer_page):
    page = dialer_page
    panel = page.locator('[data-testid="dialer-panel"]')
    assert panel.is_hidden()
    page.keyboard.press("Control+d")
    assert panel.is_visible()
    # The bookmark shortcut is swallowed (preventDefault), for Cmd+D too.
    prevented = page.evaluate("""() => !document.dispatchEvent(new KeyboardEvent('keydown',
        {key: 'd', metaKey: true, bubbles: true, cancelable: true}))""")
    assert prevented is True
    assert panel.is_hidden()  # Cmd+D toggled it closed
    page.locator('[data-testid="dialer-toggle"]').click()
    assert panel.is_visible()
    wait_until(page, "document.querySelectorAll('#dialer-call-from option').length === 3")
    options = page.locator("#dialer-call-from option").all_inner_texts()
    assert [o.strip() for o in options] == ["+15125550100", "+13105550111", "+14155550100"]  # default first
    assert page.locator("#dialer-call-from").input_value() == "+15125550100"  # the default first/selected


def test_token_fetched_at_start_then_refreshed(dialer_page):
    page = dialer_page
    wait_until(page, "window.__twilioFake.devices.length === 1")
    assert len(page.token_requests) == 1
    identity = page.evaluate("document.getElementById('dialer').dataset.identity")
    assert identity.startswith("ws") and "-u" in identity

    # 50 minutes later (10 minutes before expiry): a second token, handed to the device.
    page.clock.fast_forward("49:00")
    settle(page)
    assert len(page.token_requests) == 1
    page.clock.fast_forward("01:00")
    wait_until(page, "window.__twilioFake.updateTokenCalls.length === 1")
    assert len(page.token_requests) == 2
    # Re-armed after the refresh: another one 50 minutes later.
    page.clock.fast_forward("50:00")
    wait_until(page, "window.__twilioFake.updateTokenCalls.length === 2")

    # The SDK's tokenWillExpire refreshes too.
    page.evaluate("window.__twilioFake.devices[0].emit('tokenWillExpire', window.__twilioFake.devices[0])")
    wait_until(page, "window.__twilioFake.updateTokenCalls.length === 3")
    # ...and so do token errors 20104 / 31205.
    page.evaluate("window.__twilioFake.devices[0].emit('error', {code: 31205, message: 'JWT token expired'})")
    wait_until(page, "window.__twilioFake.updateTokenCalls.length === 4")
    assert len(page.token_requests) == 5
    assert page.evaluate("window.__twilioFake.devices.length") == 1  # one device, tokens swapped in place


def test_no_token_swap_during_a_call(dialer_page):
    page = dialer_page
    wait_until(page, "window.__twilioFake.devices.length === 1")
    page.keyboard.press("Control+d")
    wait_until(page, "document.querySelectorAll('#dialer-call-from option').length === 3")
    page.locator("#dialer-call-from").select_option("+14155550100")
    page.fill("#dialer-number", "(415) 555-0142")
    page.click('[data-testid="dialer-call"]')
    wait_until(page, "window.__twilioFake.connectCalls.length === 1")
    params = page.evaluate("window.__twilioFake.connectCalls[0].params")
    assert params == {"To": "+14155550142", "CallerId": "+14155550100"}  # normalised server-side
    page.evaluate("window.__twilioFake.calls[0].emit('accept', window.__twilioFake.calls[0])")
    wait_until(page, "document.getElementById('dialer').dataset.state === 'In call'")

    # DTMF and mute go to the call.
    page.click('[data-digit="5"]')
    assert page.evaluate("window.__twilioFake.calls[0].digits") == ["5"]
    page.click('[data-testid="dialer-mute"]')
    assert page.evaluate("window.__twilioFake.calls[0].muted") is True

    # Timer and tokenWillExpire fire mid-call: nothing is fetched or swapped.
    page.clock.fast_forward("50:00")
    page.evaluate("window.__twilioFake.devices[0].emit('tokenWillExpire', window.__twilioFake.devices[0])")
    settle(page)
    assert len(page.token_requests) == 1
    assert page.evaluate("window.__twilioFake.updateTokenCalls.length") == 0
    assert page.locator('[data-testid="dialer-timer"]').inner_text() != "00:00"

    # The call ends: the deferred refresh happens once.
    page.click('[data-testid="dialer-hangup"]')
    wait_until(page, "window.__twilioFake.updateTokenCalls.length === 1")
    settle(page)
    assert len(page.token_requests) == 2
    assert page.evaluate("window.__twilioFake.updateTokenCalls.length") == 1
    assert page.evaluate("document.getElementById('dialer').dataset.state") == "Call ended"


def test_invalid_number_is_refused_before_calling(dialer_page):
    page = dialer_page
    wait_until(page, "window.__twilioFake.devices.length === 1")
    page.keyboard.press("Control+d")
    page.fill("#dialer-number", "call mom")
    page.click('[data-testid="dialer-call"]')
    assert "digits" in page.locator('[data-testid="dialer-number-error"]').inner_text()
    page.fill("#dialer-number", "555")
    page.click('[data-testid="dialer-call"]')
    wait_until(page, "document.querySelector('[data-testid=dialer-number-error]').textContent.includes('valid')")
    assert page.evaluate("window.__twilioFake.connectCalls.length") == 0


def test_incoming_call_opens_the_panel(dialer_page):
    page = dialer_page
    wait_until(page, "window.__twilioFake.devices.length === 1")
    page.evaluate("""() => {
        const call = new window.__twilioFake.FakeCall({From: '+14155550123'});
        window.__twilioFake.incoming = call;
        window.__twilioFake.devices[0].emit('incoming', call);
    }""")
    assert page.locator('[data-testid="dialer-panel"]').is_visible()
    assert "+14155550123" in page.locator('[data-testid="dialer-incoming"]').inner_text()
    page.click('[data-role="accept"]')
    wait_until(page, "document.getElementById('dialer').dataset.state === 'In call'")


def test_panel_banner_and_no_token_when_not_ready(browser_page, live_server, rep, workspace):
    MembershipFactory(workspace=workspace, user=rep)  # no Twilio connection
    token_requests = []
    browser_page.on("request", lambda r: token_requests.append(r.url) if "/v1/voice/token" in r.url else None)
    browser_page.add_init_script(FAKE_TWILIO)
    login(browser_page, live_server, "rita")
    browser_page.goto(live_server.url + "/calls/")
    browser_page.keyboard.press("Control+d")
    banner = browser_page.locator('[data-testid="dialer-banner"]')
    assert banner.is_visible() and "Connect your phone system" in banner.inner_text()
    assert browser_page.locator('[data-testid="dialer-call"]').is_disabled()
    settle(browser_page)
    assert token_requests == []


FAKE_TWILIO_OFFLINE = FAKE_TWILIO.replace(
    'register() { setTimeout(() => this.emit("registered"), 0); return Promise.resolve(); }',
    'register() { setTimeout(() => this.emit("error", {code: 31005, message: "ConnectionError (31005)"}), 0);'
    ' return Promise.resolve(); }',
).replace(
    "      return Promise.resolve(call);",
    "      return new Promise(() => {});  // the signalling never answers",
)


def test_signalling_error_is_not_ready_and_call_recovers(browser_page, live_server, rep, workspace, settings):
    """As against the sandbox: the SDK's signalling fails (31005). The panel must not say "Ready", a Call pressed
    while it is down is given up at the next error, and Call works again once the device registers."""
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # sandbox_active()
    MembershipFactory(workspace=workspace, user=rep)
    ready_workspace(workspace, numbers=("+15125550100",))
    assert FAKE_TWILIO_OFFLINE != FAKE_TWILIO
    browser_page.add_init_script(FAKE_TWILIO_OFFLINE)
    login(browser_page, live_server, "rita")
    browser_page.goto(live_server.url + "/calls/")
    page = browser_page
    page.locator('[data-testid="dialer-toggle"]').click()
    assert "cannot reach Twilio's voice signalling" in page.locator('[data-testid="dialer-sandbox-note"]').inner_text()
    wait_until(page, "document.querySelector('[data-testid=dialer-error]').textContent.includes('31005')")
    assert page.locator('[data-testid="dialer-state"]').inner_text() == "Offline"
    call = page.locator('[data-testid="dialer-call"]')
    # The connection comes back: Ready, the error cleared, Call enabled.
    page.evaluate("window.__twilioFake.devices[0].emit('registered')")
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    assert page.locator('[data-testid="dialer-error"]').is_hidden()
    wait_until(page, "document.querySelectorAll('#dialer-call-from option').length >= 1")
    page.fill('[data-testid="dialer-number"]', "+15125550199")
    call.click()
    wait_until(page, "window.__twilioFake.connectCalls.length === 1")
    assert call.is_disabled()  # placing, the SDK has not answered
    page.evaluate("window.__twilioFake.devices[0].emit('error', {code: 31005, message: 'ConnectionError (31005)'})")
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Offline'")
    wait_until(page, "!document.querySelector('[data-testid=dialer-call]').disabled")  # not greyed for good
    page.evaluate("window.__twilioFake.devices[0].emit('registered')")
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    call.click()
    wait_until(page, "window.__twilioFake.connectCalls.length === 2")


def test_a_call_request_the_sdk_never_answers_is_given_up(browser_page, live_server, rep, workspace):
    """No error event either (signalling just hangs): after 20 s Call can be pressed again."""
    MembershipFactory(workspace=workspace, user=rep)
    ready_workspace(workspace, numbers=("+15125550100",))
    browser_page.add_init_script(FAKE_TWILIO.replace("      return Promise.resolve(call);",
                                                     "      return new Promise(() => {});"))
    browser_page.clock.install()
    login(browser_page, live_server, "rita")
    browser_page.goto(live_server.url + "/calls/")
    page = browser_page
    page.locator('[data-testid="dialer-toggle"]').click()
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    wait_until(page, "document.querySelectorAll('#dialer-call-from option').length >= 1")
    page.fill('[data-testid="dialer-number"]', "+15125550199")
    page.locator('[data-testid="dialer-call"]').click()
    wait_until(page, "window.__twilioFake.connectCalls.length === 1")
    assert page.locator('[data-testid="dialer-call"]').is_disabled()
    page.clock.fast_forward("00:21")
    wait_until(page, "!document.querySelector('[data-testid=dialer-call]').disabled")
    assert "did not answer the call request" in page.locator('[data-testid="dialer-error"]').inner_text()


def test_the_voice_sdk_registers_only_where_the_dialer_is_used(browser_page, live_server, rep, workspace):
    """Not on every page (each registration is a signalling connection, and errors where it cannot connect): on
    the dialer's own pages at once, elsewhere when the rep opens the panel; then on every page of the tab."""
    MembershipFactory(workspace=workspace, user=rep)
    ready_workspace(workspace, numbers=("+15125550100",))
    page = browser_page
    page.add_init_script(FAKE_TWILIO)
    token_requests = []
    page.on("request", lambda r: token_requests.append(r.url) if "/v1/voice/token" in r.url else None)
    login(page, live_server, "rita")
    page.goto(live_server.url + "/studio/agents/")
    settle(page)
    assert token_requests == [] and page.evaluate("window.__twilioFake.devices.length") == 0
    assert page.locator('[data-testid="dialer-state"]').inner_text() == "Idle"
    page.locator('[data-testid="dialer-toggle"]').click()
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    assert len(token_requests) == 1
    page.goto(live_server.url + "/studio/agents/")  # the same tab: the rep uses the dialer now
    wait_until(page, "document.querySelector('[data-testid=dialer-state]').textContent === 'Ready'")
    assert len(token_requests) == 2
