"""Test in Studio: a text chat with any version in a chosen environment, through the same runtime + providers."""
import asyncio
import json

import pytest
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from calls.models import CallHandover
from tests.conditions import CEILING
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership

from .conftest import make_call_setup, run

pytestmark = pytest.mark.django_db(transaction=True)


def _cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    client.get("/")  # lets the middleware store the current workspace in the session
    return f"sessionid={client.cookies['sessionid'].value}"


def _url(server, version_id, environment_id):
    return f"{server.ws_base}/v1/studio/test-chat/{version_id}/{environment_id}"


async def _chat(url, cookie, script):
    headers = {"Cookie": cookie, "Origin": "http://127.0.0.1"}
    received = []
    async with connect(url, additional_headers=headers) as ws:
        async def read_until(pred, timeout=CEILING):
            async def loop():
                while True:
                    msg = json.loads(await ws.recv())
                    received.append(msg)
                    if pred(msg):
                        return msg
            return await asyncio.wait_for(loop(), timeout)

        await script(ws, read_until)
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 1)))
        except (ConnectionClosed, asyncio.TimeoutError):
            pass
    return received


def test_admin_chats_with_the_draft_and_sees_the_handover_instead_of_a_dial(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)

    async def script(ws, read_until):
        ready = await read_until(lambda m: m["type"] == "ready")
        assert ready["provider"] == "scripted"
        await read_until(lambda m: m["type"] == "token" and m["last"])  # the greeting
        await ws.send(json.dumps({"type": "message", "text": "what are your opening hours?"}))
        await read_until(lambda m: m["type"] == "turn" and m["role"] == "agent" and "nine to five" in m["text"])
        await ws.send(json.dumps({"type": "message", "text": "put me through to sales"}))
        await read_until(lambda m: m["type"] == "handover")

    received = run(_chat(_url(asgi_server, setup.version.pk, setup.environment.pk), _cookie_for(admin), script))
    handover = next(m for m in received if m["type"] == "handover")
    assert handover["action"] == "transfer_to_sales" and handover["destination"] == "+31201234567"
    # Shown, not dialled: no handover record, no request to Twilio.
    assert not CallHandover.objects.exists()
    assert not twilio_sandbox.requests_to(r"/Calls/")


def test_chat_provider_runs_in_the_chosen_environment(asgi_server, fake_chat):
    setup = make_call_setup(provider="openai_chat", secrets_={"OPENAI_API_KEY": fake_chat.api_key},
                            variables={"OPENAI_BASE_URL": fake_chat.base_url})
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)

    async def script(ws, read_until):
        await read_until(lambda m: m["type"] == "ready")
        await ws.send(json.dumps({"type": "message", "text": "hi agent"}))
        await read_until(lambda m: m["type"] == "turn" and m["role"] == "agent" and m["text"].startswith("Echo"))

    run(_chat(_url(asgi_server, setup.version.pk, setup.environment.pk), _cookie_for(admin), script))
    assert fake_chat.requests[0][0]["Authorization"] == f"Bearer {fake_chat.api_key}"


def test_provider_failure_is_reported_in_the_chat(asgi_server):
    setup = make_call_setup(provider="openai_chat")  # no OPENAI_API_KEY in this environment
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)

    async def script(ws, read_until):
        await read_until(lambda m: m["type"] == "error")

    received = run(_chat(_url(asgi_server, setup.version.pk, setup.environment.pk), _cookie_for(admin), script))
    error = next(m for m in received if m["type"] == "error")
    assert "OPENAI_API_KEY" in error["message"]


def test_other_workspaces_members_and_anonymous_are_refused(asgi_server):
    setup = make_call_setup()
    mine = make_call_setup()
    other_admin = UserFactory()
    MembershipFactory(workspace=mine.workspace, user=other_admin, role=Membership.Role.ADMIN)
    member = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=member, role=Membership.Role.MEMBER)
    admin = UserFactory()
    MembershipFactory(workspace=setup.workspace, user=admin, role=Membership.Role.ADMIN)

    async def nothing(ws, read_until):
        pass

    def refused(url, cookie):
        with pytest.raises(InvalidStatus) as info:
            run(_chat(url, cookie, nothing))
        return info.value.response.status_code

    url = _url(asgi_server, setup.version.pk, setup.environment.pk)
    assert refused(url, _cookie_for(other_admin)) == 403  # another workspace's version (id in the URL)
    assert refused(url, _cookie_for(member)) == 403  # not an admin
    assert refused(url, "") == 403  # not logged in
    # The right version with another workspace's environment (the second id in the URL).
    assert refused(_url(asgi_server, setup.version.pk, mine.environment.pk), _cookie_for(admin)) == 403
