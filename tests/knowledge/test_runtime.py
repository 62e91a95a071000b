"""Knowledge in a call: the search_knowledge tool (schema, run, wiring in the chat provider), the every-turn
option, the scripted fallback's best passage, and the version's knowledge loaded into the call's context."""
import asyncio
import json

import pytest

from agents import services as agent_services
from agents.selectors import draft_get
from knowledge import services
from knowledge.runtime import (
    KNOWLEDGE_TOOL,
    knowledge_best_answer,
    knowledge_tool_run,
    knowledge_tool_schema,
    knowledge_turn_lookup,
)
from knowledge.selectors import KnowledgeScope, version_knowledge_scope
from tests.fakes.openai_chat import FakeChatServer


@pytest.fixture
def scope(manual_kb):
    return KnowledgeScope(workspace_id=manual_kb.workspace_id, knowledge_base_ids=(manual_kb.pk,))


@pytest.mark.django_db
def test_the_tool_answers_with_passages_and_their_sources(scope):
    schema = knowledge_tool_schema()
    assert schema["name"] == KNOWLEDGE_TOOL == "search_knowledge"
    assert schema["parameters"]["required"] == ["query"]
    lookup = knowledge_tool_run(scope, json.dumps({"query": "what does error E5 mean"}))
    assert lookup.query == "what does error E5 mean"
    assert lookup.model_text().startswith("[1] (K2 owner's manual · passage ")
    assert "Error E5: cliff sensor dirty:" in lookup.model_text()
    assert lookup.transcript_line().startswith("Knowledge for “what does error E5 mean”: K2 owner's manual · passage ")
    assert lookup.sources[0]["source"] == "K2 owner's manual"
    empty = knowledge_tool_run(scope, {"query": "zebra giraffe"})
    assert empty.hits == [] and empty.model_text() == "The knowledge base has nothing about 'zebra giraffe'."


@pytest.mark.django_db
def test_every_turn_lookup_runs_only_when_the_version_asks_for_it(scope):
    assert knowledge_turn_lookup(scope, "how long is the warranty") is None
    every = KnowledgeScope(workspace_id=scope.workspace_id, knowledge_base_ids=scope.knowledge_base_ids,
                           every_turn=True)
    assert knowledge_turn_lookup(every, "how long is the warranty").hits[0].text.startswith("Warranty:")


@pytest.mark.django_db
def test_scripted_agents_get_the_best_passage_without_its_label(scope):
    answer, lookup = knowledge_best_answer(scope, "Can I wash the HEPA filter with water?")
    assert answer.startswith("The HEPA filter sits inside the dustbin.")
    assert lookup.hits[0].citation.startswith("K2 owner's manual · passage ")
    assert knowledge_best_answer(KnowledgeScope(), "anything") is None


@pytest.mark.django_db
def test_the_call_context_holds_the_versions_knowledge(agent, manual_kb):
    from calls.engine.context import context_for_test_chat

    draft = draft_get(agent=agent)
    services.version_knowledge_set(draft=draft, knowledge_base=manual_kb, used=True)
    ctx = context_for_test_chat(version=draft, environment=None)
    assert ctx.knowledge.knowledge_base_ids == (manual_kb.pk,) and not ctx.knowledge.snapshot_ids
    v1 = agent_services.agent_publish(agent=agent)
    scope = version_knowledge_scope(version=v1)
    assert scope.snapshot_ids and not scope.knowledge_base_ids
    assert context_for_test_chat(version=v1, environment=None).knowledge == scope


class KnowledgeChat(FakeChatServer):
    """Asks search_knowledge with the caller's words, then answers with what the tool said."""

    def respond(self, handler, user, body):
        last = body["messages"][-1]
        if last.get("role") == "user" and user.startswith("manual:"):
            self._tool_args(handler, KNOWLEDGE_TOOL, json.dumps({"query": user.removeprefix("manual:").strip()}))
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
            return
        super().respond(handler, user, body)


@pytest.fixture
def knowledge_chat():
    fake = KnowledgeChat().start()
    yield fake
    fake.stop()


def _provider(knowledge_chat, scope):
    from calls.engine.context import CallContext
    from calls.providers.text_chat import ChatProvider as OpenAIChatProvider

    return OpenAIChatProvider(CallContext(
        transport="text", provider="openai_chat", knowledge=scope,
        secrets={"OPENAI_API_KEY": knowledge_chat.api_key, "OPENAI_BASE_URL": knowledge_chat.base_url}))


async def _events_until(provider, predicate, timeout=10):
    seen = []

    async def loop():
        while True:
            event = await provider.events.get()
            seen.append(event)
            if predicate(event):
                return seen
    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.django_db(transaction=True)
def test_a_search_knowledge_call_is_a_search_the_engine_runs(knowledge_chat, scope):
    """The conversation decides what a tool call means: search_knowledge is a SearchKnowledge event (the engine
    runs it off the loop and answers the tool call: see the test chat test below for the whole loop)."""
    from calls.engine.events import SearchKnowledge

    provider = _provider(knowledge_chat, scope)
    assert KNOWLEDGE_TOOL in [t["name"] for t in provider.tools()]

    async def scenario():
        await provider.start()
        await provider.on_text("manual: how loud is it in decibels")
        events = await _events_until(provider, lambda e: isinstance(e, SearchKnowledge))
        await provider.close()
        return events

    events = asyncio.run(scenario())
    [search] = [e for e in events if isinstance(e, SearchKnowledge)]
    assert search.query == "how loud is it in decibels" and search.call_id
    sent = knowledge_chat.requests[-1][1]
    assert any(t["function"]["name"] == KNOWLEDGE_TOOL for t in sent["tools"])


@pytest.mark.django_db(transaction=True)
def test_with_every_turn_the_passages_go_to_the_model_before_the_callers_words(knowledge_chat, manual_kb):
    from calls.engine.events import Transcript

    scope = KnowledgeScope(workspace_id=manual_kb.workspace_id, knowledge_base_ids=(manual_kb.pk,), every_turn=True)
    provider = _provider(knowledge_chat, scope)

    async def scenario():
        await provider.start()
        await provider.on_text("what is the warranty")
        events = await _events_until(provider, lambda e: isinstance(e, Transcript) and e.role == "agent")
        await provider.close()
        return events

    events = asyncio.run(scenario())
    assert any(isinstance(e, Transcript) and e.role == "event" and e.text.startswith("Knowledge for") for e in events)
    messages = knowledge_chat.requests[-1][1]["messages"]
    assert messages[-1] == {"role": "user", "content": "what is the warranty"}
    assert messages[-2]["role"] == "system" and "Warranty: The Kestrel K2 comes with" in messages[-2]["content"]


@pytest.mark.django_db(transaction=True)
def test_the_test_chat_shows_which_passages_the_answer_used(knowledge_chat, scope):
    """Through the engine the Studio test chat runs: the lookup is a transcript turn (source · position)."""
    from calls.engine.context import CallContext
    from calls.engine.engine import call_open

    ctx = CallContext(transport="text", provider="openai_chat", knowledge=scope, test_mode=True, greeting="Hello.",
                      secrets={"OPENAI_API_KEY": knowledge_chat.api_key, "OPENAI_BASE_URL": knowledge_chat.base_url})
    sent = []
    ready, answered = asyncio.Event(), asyncio.Event()

    async def send(msg):
        sent.append(msg)
        if msg.get("type") == "token" and msg.get("last"):  # the greeting: the provider has started
            ready.set()
        if msg.get("type") == "turn" and msg.get("role") == "agent" and "tool said" in msg.get("text", ""):
            answered.set()

    async def scenario():
        engine = call_open("text", ctx, send)
        engine.start()
        try:
            await asyncio.wait_for(ready.wait(), 10)
            await engine.handle({"type": "message", "text": "manual: what is the warranty"})
            await asyncio.wait_for(answered.wait(), 10)
        finally:
            await engine.close()

    asyncio.run(scenario())
    events = [m["text"] for m in sent if m.get("type") == "turn" and m.get("role") == "event"]
    assert len(events) == 1
    assert events[0].startswith("Knowledge for “what is the warranty”: K2 owner's manual · passage ")
