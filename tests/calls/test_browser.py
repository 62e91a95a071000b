"""In a real browser: the live view shows a call arriving, the member opens it, listens, sees the transcript
update, and takes it over. The ASGI app (HTTP + websockets) runs on loopback; Twilio's side is simulated."""
import asyncio
import threading

import pytest
from websockets.asyncio.client import connect

from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

from .conftest import AsgiServer, TwilioMediaClient, make_call_setup


@pytest.fixture
def asgi_http_server(transactional_db):
    """The ASGI app with static files (like runserver): the browser loads pages and opens websockets on it."""
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


class SimulatedCall(threading.Thread):
    """Twilio's side of a Media Stream in its own thread/loop: greeting, then a key press when told."""

    def __init__(self, server, setup, session, token):
        super().__init__(daemon=True)
        self.server, self.setup, self.session, self.token = server, setup, session, token
        self.press = threading.Event()
        self.done = threading.Event()
        self.error = None

    def run(self):
        try:
            asyncio.run(self._call())
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.done.set()

    async def _call(self):
        async with connect(self.server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=self.token, call_sid=self.session.call_sid,
                               account_sid=self.setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            while not self.press.is_set():
                await twilio.drain(0.1)
            await twilio.dtmf("4")
            await twilio.until_closed()  # the server ends the stream (take-over)


@pytest.mark.browser
def test_member_watches_listens_and_takes_over_in_the_browser(_browser, asgi_http_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    user = UserFactory(username="sam")
    MembershipFactory(workspace=setup.workspace, user=user, role=Membership.Role.MEMBER)
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)
    context = _browser.new_context(base_url=asgi_http_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    call = SimulatedCall(asgi_http_server, setup, session, token)
    try:
        login(page, asgi_http_server, "sam")
        page.goto(f"{asgi_http_server.url}/studio/calls/live/")
        page.locator("[data-testid=live-state]", has_text="live").wait_for()
        call.start()  # the call arrives while the page is open: it appears without a reload
        row = page.locator(f'#live-calls-body tr[data-call-id="{session.pk}"]')
        row.wait_for()
        row.locator(".last-turn", has_text="Hello, this is Ava.").wait_for()
        page.locator("#live-stats [data-stat=calls]", has_text="1").wait_for()
        row.locator("[data-testid=open-call]").click()
        page.click("[data-testid=listen-start]")
        page.locator("[data-testid=listen-state]", has_text="Listening: both sides.").wait_for()
        call.press.set()
        transcript = page.locator("[data-testid=transcript]")
        transcript.get_by_text("(pressed 4)").wait_for()  # the transcript updates live
        page.select_option("[data-testid=takeover-action]", "transfer_to_support")
        page.click("[data-testid=takeover]")
        page.locator("[data-testid=iv-result]", has_text="Done: takeover.").wait_for()
        transcript.get_by_text("sam took over: transfer_to_support → +31207654321").wait_for()
        # The interventions list keeps up with the transcript, without a reload.
        page.locator("[data-testid=interventions] tr", has_text="transfer_to_support").wait_for()
        assert "Took over" in page.locator("[data-testid=interventions]").inner_text()
        page.locator("[data-testid=listen-state]", has_text="The call has ended").wait_for()
        assert not errors, errors
    finally:
        call.press.set()
        context.close()
    call.done.wait(25)
    assert call.error is None
    sent = twilio_sandbox.call_twiml(setup.connection.account_sid, session.call_sid)
    assert "<Number>+31207654321</Number></Dial>" in sent
