""""Call this version" in Chromium with a fake microphone: the caller says "I want to talk to sales", answers the
agent's question as a person would (the WAV says "yes" after a pause; the key it offers when asked again), and is
handed over to sales; no other action runs. Chromium loops the WAV: the script is built for that (the words, a
pause for the agent, "yes", a long pause; a second round says the same, which the agent must not act on wrongly).
The 5-of-5 over the real socket without a browser is tests/calls/test_offline_agent_calls.py."""
from __future__ import annotations

import shutil
import subprocess
import wave

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import make_call_setup
from .test_voice_call_browser import _call, asgi_http_server, mic_page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def _speech(tmp_path, name: str, text: str):
    path = tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+klatt", "-s", "150", "-w", str(path), text], check=True,
                   capture_output=True)
    with wave.open(str(path)) as w:
        return w.getframerate(), w.readframes(w.getnframes())


@pytest.fixture
def spoken_wav(tmp_path):
    """Waits for the greeting (3 s), says it wants sales, waits for the agent's question (4 s), says "yes", then
    leaves the agent time to act (8 s) before Chromium loops the file."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    rate, words = _speech(tmp_path, "words", "I want to talk to sales")
    _, yes = _speech(tmp_path, "yes", "yes")
    silence = b"\0\0" * rate
    wav = tmp_path / "caller.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(silence * 3 + words + silence * 4 + yes + silence * 8)
    return wav


def test_saying_sales_and_answering_the_agents_question_hands_over_to_sales(mic_page, asgi_http_server):  # noqa: F811
    setup = make_call_setup()
    page = mic_page
    panel = _call(page, asgi_http_server, setup)
    log = page.locator("[data-testid=voice-call-log]")
    # The agent asks (a confirmation or the keys): it never hands over on the first guess of a weak recogniser.
    log.locator("li.agent", has_text="press 1").first.wait_for(timeout=60_000)
    handover = log.locator("li.handover")
    try:
        # The caller's "yes" (if the agent asked "Sales, is that right?" and heard it) hands over...
        handover.first.wait_for(timeout=15_000)
    except PlaywrightTimeout:  # ...or, asked again, the caller presses the key the agent offers
        page.select_option("[data-testid=voice-call-digit]", "1")
        handover.first.wait_for(timeout=20_000)
    assert "transfer_to_sales" in handover.first.inner_text()
    page.wait_for_function("() => document.querySelector('[data-testid=voice-call]').dataset.state === 'ended'")
    assert panel.get_attribute("data-handover") == "transfer_to_sales"
    assert handover.count() == 1
    assert not page.console_errors, page.console_errors
