""""Call this version" in a real browser: Chromium's fake microphone plays a WAV that espeak-ng spoke, the page
captures it with its AudioWorklet, streams μ-law frames over the Media Streams socket to the real engine, and
plays the agent's audio back. The ASGI app (HTTP + websockets) runs on loopback under uvicorn."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import CHROMIUM_ARGS, CHROMIUM_PATH, _manager, login
from workspaces.models import Membership

from .conftest import AsgiServer, make_call_setup

pytestmark = pytest.mark.browser

FAKE_MIC = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def asgi_http_server(transactional_db):
    """The ASGI app with static files (like runserver): the browser loads the page and opens the socket on it."""
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    from config.routing import websocket_urlpatterns

    app = ProtocolTypeRouter({"http": ASGIStaticFilesHandler(get_asgi_application()),
                              "websocket": URLRouter(websocket_urlpatterns)})
    server = AsgiServer(app=app).start()
    server.url = f"http://127.0.0.1:{server.port}"
    yield server
    server.stop()


@pytest.fixture
def spoken_wav(tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "caller.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), "I want to talk to sales"],
                   check=True, capture_output=True)
    return wav


@pytest.fixture
def mic_page(_browser, spoken_wav, asgi_http_server):
    """A page of a chromium whose microphone is the espeak-ng WAV (its own process: the flag is per browser)."""
    browser = _manager.playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, headless=True,
        args=CHROMIUM_ARGS + FAKE_MIC + [f"--use-file-for-fake-audio-capture={spoken_wav}"])
    context = browser.new_context(base_url=asgi_http_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    context.close()
    browser.close()


def _call(page, server, setup):
    admin = UserFactory(username="vera")
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)
    login(page, server, "vera")
    page.goto(f"{server.url}/studio/agents/{setup.version.agent_id}/")
    page.select_option("[data-testid=voice-call-version]", str(setup.version.pk))
    page.select_option("[data-testid=voice-call-environment]", str(setup.environment.pk))
    page.click("[data-testid=voice-call-start]")  # the click is the user gesture that starts the AudioContext
    panel = page.locator("[data-testid=voice-call]")
    page.wait_for_function("document.querySelector('[data-testid=voice-call]').dataset.state === 'live'")
    return panel


def test_admin_calls_the_draft_from_the_browser_hears_the_greeting_and_sees_the_transcript(
        mic_page, asgi_http_server):
    setup = make_call_setup()
    page = mic_page
    panel = _call(page, asgi_http_server, setup)
    log = page.locator("[data-testid=voice-call-log]")
    log.locator("li.agent", has_text="Hello, this is Ava.").wait_for()
    # The greeting's audio arrived (frames counted by the page) and the microphone streams 20 ms frames.
    page.wait_for_function("Number(document.querySelector('[data-testid=voice-call]').dataset.framesIn) >= 5")
    page.wait_for_function("Number(document.querySelector('[data-testid=voice-call]').dataset.framesOut) >= 50")
    # The worklet played the greeting out and echoed its marks (or the caller's voice cleared it: barge-in).
    page.wait_for_function("(d => Number(d.marks) >= 1 || Number(d.clears) >= 1)"
                           "(document.querySelector('[data-testid=voice-call]').dataset)")
    assert log.locator("li.latency").first.get_attribute("data-ms").isdigit()
    # Keypad: key 1 is the sales rule; the handover is shown, nothing is dialled.
    page.select_option("[data-testid=voice-call-digit]", "1")
    log.locator("li.handover", has_text="transfer_to_sales → +31201234567").wait_for()
    log.locator("li.caller", has_text="(pressed 1)").wait_for()
    page.wait_for_function("document.querySelector('[data-testid=voice-call]').dataset.state === 'ended'")
    assert panel.get_attribute("data-handover") == "transfer_to_sales"
    assert not page.console_errors, page.console_errors


def test_the_callers_voice_is_heard_by_the_agents_voice_detection(mic_page, asgi_http_server):
    """The espeak-ng sentence reaches the engine as speech: the scripted agent's VAD barges in on its greeting
    (a long greeting, so the caller talks over it) and the page gets Twilio's `clear`."""
    setup = make_call_setup()
    page = mic_page
    _call(page, asgi_http_server, setup)
    page.wait_for_function("Number(document.querySelector('[data-testid=voice-call]').dataset.clears) >= 1",
                           timeout=20_000)
    page.locator("[data-testid=voice-call-log] li.agent.interrupted").first.wait_for()


@pytest.mark.xfail(strict=False, reason="needs offline speech (issue 13)")
def test_saying_the_keyword_hands_over(mic_page, asgi_http_server):
    setup = make_call_setup()
    page = mic_page
    _call(page, asgi_http_server, setup)
    page.locator("[data-testid=voice-call-log] li.handover", has_text="transfer_to_sales").wait_for(timeout=25_000)
