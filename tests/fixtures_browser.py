"""Browser tests: Playwright (sync API) driving Debian's chromium against pytest-django's `live_server`.

    @pytest.mark.browser
    def test_something(browser_page, live_server):
        user = UserFactory(username="ann")          # password "pw-for-tests"
        ...make a membership...
        login(browser_page, live_server, "ann")
        browser_page.goto(live_server.url + "/settings/dialer/")

- One chromium for consecutive browser tests (started on first use, stopped before any
  other test), a fresh context (cookies, storage) and page per test.
- `live_server` implies `transactional_db`: what the test writes is committed and
  the server thread sees it.
- Playwright's sync API keeps an asyncio loop registered on the test thread, which
  makes Django refuse ORM calls there; DJANGO_ALLOW_ASYNC_UNSAFE is set while the
  browser is up (test code and factories are plain synchronous code).
- On failure a screenshot goes to $BROWSER_SCREENSHOT_DIR (default: the test run's
  tmp dir, printed in the failure report).
- No chromium at /usr/bin/chromium (or $CHROMIUM_PATH): the test fails when CI is
  set, and is skipped otherwise.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DEFAULT_PASSWORD = "pw-for-tests"
DEFAULT_TIMEOUT_MS = 15_000


def _missing_browser(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run: install Debian's chromium).", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"_browser_rep_{report.when}", report)
    return report


class _BrowserManager:
    """One chromium shared by consecutive browser tests, stopped before any other test runs.

    Playwright's sync API leaves its asyncio loop registered as *running* on the test thread
    while it is started, so `asyncio.run()` in a later non-browser test would fail, and Django
    would refuse ORM calls. Stopping it in between (see `pytest_runtest_setup`) keeps the
    speed of a shared browser without leaking that state into other tests.
    """

    def __init__(self):
        self.playwright = None
        self.browser = None
        self._previous_env = None

    def get(self):
        if self.browser is not None:
            return self.browser
        if not os.path.exists(CHROMIUM_PATH):
            _missing_browser(f"chromium not found at {CHROMIUM_PATH}")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:  # pragma: no cover - playwright is a dev dependency
            _missing_browser("the playwright package is not installed")
        self._previous_env = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        self.playwright = sync_playwright().start()
        try:
            self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True,
                                                           args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001
            self.stop()
            _missing_browser(f"chromium at {CHROMIUM_PATH} did not start: {exc}")
        return self.browser

    def stop(self):
        if self.browser is not None:
            try:
                self.browser.close()
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.browser = None
        if self.playwright is not None:
            self.playwright.stop()
            self.playwright = None
            if self._previous_env is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = self._previous_env


_manager = _BrowserManager()
_BROWSER_FIXTURES = {"browser_page", "browser_context", "_browser"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if _manager.browser is not None and not (_BROWSER_FIXTURES & set(getattr(item, "fixturenames", ()))):
        _manager.stop()


def pytest_sessionfinish(session, exitstatus):
    _manager.stop()


@pytest.fixture
def _browser():
    return _manager.get()


@pytest.fixture(scope="session")
def _screenshot_dir() -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="callwell-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_context(_browser, live_server):
    context = _browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def browser_page(request, browser_context, _screenshot_dir):
    """A fresh Playwright Page (own cookies) whose relative URLs resolve against `live_server`."""
    page = browser_context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = console_errors  # tests may assert on JS errors
    yield page
    report = getattr(request.node, "_browser_rep_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        path = _screenshot_dir / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("browser", f"screenshot: {path}\nurl: {page.url}\nconsole errors: {console_errors}"))
        except Exception as exc:  # noqa: BLE001 - a screenshot must not hide the real failure
            report.sections.append(("browser", f"screenshot failed: {exc}"))
    page.close()


def login(page, live_server, username: str, password: str = DEFAULT_PASSWORD) -> None:
    """Log in through the real /login/ form; fails the test if the login page is still shown afterwards."""
    base = live_server.url if hasattr(live_server, "url") else str(live_server)
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    if "/login/" in page.url:
        raise AssertionError(f"login as {username!r} failed: still on {page.url}")


@pytest.fixture
def browser_login():
    """The `login` helper as a fixture: `browser_login(page, live_server, "alice")`."""
    return login
