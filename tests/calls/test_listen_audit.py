"""Listening to a live call over the real listen websocket writes one `call.listened` audit row."""
import pytest

from workspaces.models import AuditEntry

from .conftest import Reader, browser_ws, cookie_for, make_call_setup, member_of, run
from .test_listen_intervene import _media_call, _wait_registered

pytestmark = pytest.mark.django_db(transaction=True)


def test_listening_to_a_live_call_is_audited(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    session = setup.new_session(sandbox=twilio_sandbox)
    member = member_of(setup.workspace)
    cookie = cookie_for(member)
    token = setup.token(session)

    async def scenario():
        ws, twilio = await _media_call(asgi_server, setup, session, token)
        await _wait_registered(session.pk)
        async with browser_ws(asgi_server, f"/v1/studio/calls/{session.pk}/listen", cookie) as listen:
            await Reader(listen).until(lambda m: m["kind"] == "hello")
        await twilio.stop()
        await ws.close()

    run(scenario())
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CALL_LISTENED)
    assert (entry.workspace_id, entry.actor_id, entry.object_id) == (setup.workspace.pk, member.pk, str(session.pk))
    assert entry.ip_address == "127.0.0.1"
