"""Another agent takes the call: a real call on the sandbox (ConversationRelay) moves from a scripted agent to a
published chat agent (a local fake model), which sees the conversation so far; one call page shows both parts."""
import pytest

from agents import services as agent_services
from agents.models import HandoverAction
from calls.models import CallHandover, CallSession, CallTurn
from tests.agents.factories import AgentFactory, draft_of
from tests.calls.engine.conftest import asgi_server, fake_chat, make_call_setup  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

SAYS = "I have a billing question"


def _setup(sandbox, fake, settings, asgi_server, *, publish=True):  # noqa: F811
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=sandbox, transport="conversation_relay",
                            secrets_={"OPENAI_API_KEY": fake.api_key},
                            variables={"OPENAI_BASE_URL": fake.base_url, "OPENAI_CHAT_MODEL": "fake-chat"})
    setup.version.handover_rules = [{"keyword": "billing", "digit": "", "action": "transfer_to_sales"}]
    setup.version.save()
    bea = AgentFactory(workspace=setup.workspace, name="Bea")
    draft = draft_of(bea)
    draft.provider, draft.transport, draft.greeting = "openai_chat", "conversation_relay", "Hi, Bea from billing."
    draft.instructions = "You handle billing."
    draft.save()
    if publish:
        agent_services.agent_publish(agent=bea)
    HandoverAction.objects.filter(version=setup.version, name="transfer_to_sales").update(
        kind=HandoverAction.Kind.AGENT, destination="", target_agent=bea)
    number = "+15125550100"
    sandbox.add_incoming_number(setup.connection.account_sid, number, voice_url=setup.connector.webhook_url,
                                voice_method="POST")
    return setup, bea, number


def _events(call, kind):
    return [e for e in call.events if e["event"] == kind]


def test_another_agent_takes_the_call_with_the_conversation_so_far(asgi_server, twilio_sandbox, fake_chat,  # noqa: F811
                                                                   settings, client):
    setup, bea, number = _setup(twilio_sandbox, fake_chat, settings, asgi_server)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say=SAYS, wait=True)

    assert call.done.is_set() and call.status == "completed", call.events
    greetings = [e["text"] for e in _events(call, "heard") if e["what"] == "greeting"]
    assert greetings[:2] == ["Hello, this is Ava.", "Hi, Bea from billing."]
    # The second agent's model got the first part of the call: the caller's words, Ava's greeting, then its own.
    assert fake_chat.requests, call.events
    messages = fake_chat.requests[0][1]["messages"]
    contents = [(m["role"], m.get("content")) for m in messages]
    assert ("user", SAYS) in contents and ("assistant", "Hello, this is Ava.") in contents
    assert contents.index(("user", SAYS)) < contents.index(("assistant", "Hi, Bea from billing."))
    assert any(role == "system" and "handed over to you by Ava" in (text or "") for role, text in contents)
    replies = [e["text"] for e in _events(call, "heard") if e["what"] == "reply"]
    assert any(r.lower().startswith("echo: " + SAYS.lower()) for r in replies), replies  # Bea answered
    session = CallSession.objects.get(call_sid=call.call_sid)
    assert session.agent_version.agent_id == bea.pk and session.metadata["handoffs"][0]["to_agent"] == "Bea v1"
    handover = CallHandover.objects.get(call_session=session)
    assert (handover.kind, handover.outcome) == ("agent", CallHandover.Outcome.ANSWERED)
    texts = list(CallTurn.objects.filter(call_session=session).order_by("seq").values_list("text", flat=True))
    assert texts.index("Hello, this is Ava.") < texts.index("Handed over to Bea v1 (transfer_to_sales)") \
        < texts.index("Hi, Bea from billing.")
    # One call page shows both parts.
    from tests.calls.conftest import member_of
    from workspaces.models import Membership

    client.force_login(member_of(setup.workspace, role=Membership.Role.ADMIN))
    html = client.get(f"/studio/calls/{session.pk}/").content.decode()
    assert "Hello, this is Ava." in html and "Handed over to Bea v1" in html and "Hi, Bea from billing." in html


def test_an_agent_without_a_published_version_cannot_take_the_call(asgi_server, twilio_sandbox, fake_chat,  # noqa: F811
                                                                   settings):
    setup, bea, number = _setup(twilio_sandbox, fake_chat, settings, asgi_server, publish=False)

    call = twilio_sandbox.simulate_call(setup.connection.account_sid, number, say=SAYS, wait=True)

    assert call.done.is_set(), call.events
    session = CallSession.objects.get(call_sid=call.call_sid)
    assert session.agent_version.agent.name == "Ava"
    handover = CallHandover.objects.get(call_session=session)
    assert (handover.kind, handover.outcome) == ("agent", CallHandover.Outcome.FAILED)
    assert "no published version" in handover.attempts[0]["destination"]
    assert CallTurn.objects.filter(call_session=session, text__contains="cannot take calls").exists()
    assert not fake_chat.requests
