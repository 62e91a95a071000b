""""Call this version" in a real browser: Chromium's fake microphone plays a WAV that espeak-ng spoke, the page
captures it with its AudioWorklet, streams μ-law frames over the Media Streams socket to the real engine, and
plays the agent's audio back. The ASGI app (HTTP + websockets) runs on loopback under uvicorn."""
from __future__ import annotations

import base64
import shutil
import subprocess
import wave

import numpy as np
import pytest

from calls.engine import audio
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import CHROMIUM_ARGS, CHROMIUM_PATH, _manager, login
from workspaces.models import Membership

from .conftest import AsgiServer, make_call_setup

pytestmark = pytest.mark.browser

FAKE_MIC = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


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
def caller_lead_s():
    """Seconds of silence before the caller speaks (a test that barges in sets 0 with parametrize)."""
    return 3


@pytest.fixture
def spoken_wav(tmp_path, caller_lead_s):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    spoken = tmp_path / "spoken.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+klatt", "-s", "150", "-w", str(spoken), "I want to talk to sales"],
                   check=True, capture_output=True)
    # Chromium loops the file: a caller who waits for the greeting (caller_lead_s), says the sentence, then
    # pauses (3 s) so that voice activity sees the end of the turn.
    with wave.open(str(spoken)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    wav = tmp_path / "caller.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * rate * caller_lead_s + frames + b"\0\0" * rate * 3)
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
    page.wait_for_function("() => document.querySelector('[data-testid=voice-call]').dataset.state === 'live'")
    return panel


def test_admin_calls_the_draft_from_the_browser_hears_the_greeting_and_sees_the_transcript(
        mic_page, asgi_http_server):
    setup = make_call_setup()
    page = mic_page
    panel = _call(page, asgi_http_server, setup)
    log = page.locator("[data-testid=voice-call-log]")
    log.locator("li.agent", has_text="Hello, this is Ava.").wait_for()
    # The greeting's audio arrived (frames counted by the page) and the microphone streams 20 ms frames.
    page.wait_for_function("() => Number(document.querySelector('[data-testid=voice-call]').dataset.framesIn) >= 5")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=voice-call]').dataset.framesOut) >= 50")
    # The worklet played the greeting out and echoed its marks (or the caller's voice cleared it: barge-in).
    page.wait_for_function("() => (d => Number(d.marks) >= 1 || Number(d.clears) >= 1)"
                           "(document.querySelector('[data-testid=voice-call]').dataset)")
    assert log.locator("li.latency").first.get_attribute("data-ms").isdigit()
    # Keypad: key 1 is the sales rule; the handover is shown, nothing is dialled.
    page.select_option("[data-testid=voice-call-digit]", "1")
    log.locator("li.handover", has_text="transfer_to_sales → +31201234567").wait_for()
    log.locator("li.caller", has_text="(pressed 1)").wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=voice-call]').dataset.state === 'ended'")
    assert panel.get_attribute("data-handover") == "transfer_to_sales"
    assert log.locator("li", has_text="Handover:").count() == 1  # the engine's line, marked as shown
    assert page.locator("[data-testid=voice-call-hangup]").is_hidden()
    assert page.locator("[data-testid=voice-call-start]").is_visible()
    assert not page.console_errors, page.console_errors


@pytest.fixture
def heard(monkeypatch):
    """The μ-law payloads of the `media` messages the engine got from the browser (the server runs in this process)."""
    from calls.engine.wires.browser import BrowserWire

    payloads: list[str] = []
    original = BrowserWire.receive

    async def receive(self, msg):
        if msg.get("event") == "media":
            payloads.append(msg["media"]["payload"])
        await original(self, msg)

    monkeypatch.setattr(BrowserWire, "receive", receive)
    return payloads


def _envelope(pcm: np.ndarray) -> np.ndarray:
    """Log energy per 20 ms frame of 8 kHz samples."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    return np.log10((frames ** 2).mean(axis=1) + 1.0)


def _best_match(captured: np.ndarray, original: np.ndarray) -> float:
    """Highest normalised correlation of the captured envelope against the (looping) original one, over lags."""
    period = len(original)
    looped = np.tile(original, len(captured) // period + 2)
    a = (captured - captured.mean()) / (captured.std() or 1.0)
    best = -1.0
    for lag in range(period):
        b = looped[lag: lag + len(captured)]
        b = (b - b.mean()) / (b.std() or 1.0)
        best = max(best, float((a * b).mean()))
    return best


@pytest.mark.parametrize("caller_lead_s", [1])  # speaks 1 s in: over the greeting, once its audio plays
def test_the_callers_voice_reaches_the_engine_intact_and_talking_at_pickup_leaves_the_greeting_whole(
        mic_page, asgi_http_server, heard, spoken_wav):
    """The espeak-ng sentence reaches the engine as the sentence (its 20 ms energy envelope matches the WAV's: the
    browser's resampling to 8 kHz and μ-law encoding kept it), and a caller talking over the greeting at pickup does
    not cut it: the page gets no `clear`, the greeting plays out (its marks come back) and is not marked
    interrupted."""
    setup = make_call_setup()
    page = mic_page
    _call(page, asgi_http_server, setup)
    page.wait_for_function("() => Number(document.querySelector('[data-testid=voice-call]').dataset.framesOut) >= 250")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=voice-call]').dataset.marks) >= 1",
                           timeout=20_000)
    # The greeting (the first audio to play out) was not cleared; what happens later (the looping caller may
    # barge in on the agent's answer on a slow machine) is not this test's business.
    assert page.locator("[data-testid=voice-call]").get_attribute("data-clears-at-first-mark") == "0"
    first_agent_line = page.locator("[data-testid=voice-call-log] li.agent").first
    assert "interrupted" not in (first_agent_line.get_attribute("class") or "")

    captured = audio.ulaw_to_pcm16(b"".join(base64.b64decode(p) for p in list(heard)))
    assert len(captured) >= 250 * 160 * 0.9
    with wave.open(str(spoken_wav)) as wav:
        original = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        original = audio.resample(original, wav.getframerate(), 8000)
    match = _best_match(_envelope(captured[8000:]), _envelope(original))  # past the first second (AGC settling)
    assert match > 0.8, match  # the same sentence: about 0.93; another sentence, or 10 % off in rate: about 0.5
