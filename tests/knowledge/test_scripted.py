"""Scripted agents answer from the version's knowledge when no scripted answer (or handover rule) matches: the
best passage, read out without its label, only when it holds enough of the caller's words; the passage used is
an event line of the transcript (source and position), as with the other providers."""
import asyncio

import pytest

from calls.engine.context import CallContext, HandoverActionSpec
from calls.engine.events import Handover, TextOut, Transcript
from calls.providers.scripted import DEFAULT_ANSWER, ScriptedProvider
from knowledge.runtime import BEST_ANSWER_MIN_COVERAGE, knowledge_best_answer, question_coverage
from knowledge.selectors import KnowledgeScope

pytestmark = pytest.mark.django_db(transaction=True)  # the lookup runs in database_sync_to_async's thread


@pytest.fixture
def scope(manual_kb):
    return KnowledgeScope(workspace_id=manual_kb.workspace_id, knowledge_base_ids=(manual_kb.pk,))


def _provider(scope, **kw):
    return ScriptedProvider(CallContext(**{
        "transport": "text", "provider": "scripted", "knowledge": scope,
        "scripted_answers": ({"keywords": ["price"], "answer": "It costs ten euros."},),
        "handover_rules": ({"keyword": "human", "digit": "0", "action": "transfer_to_support"},),
        "actions": (HandoverActionSpec("transfer_to_support", "+31207654321"),), **kw}))


def _turn(provider, text, *, spoken=False):
    async def scenario():
        await provider.start()
        if spoken:  # a turn heard by the offline recogniser: the Dialogue's way
            await provider._heard(text, ())
        else:
            await provider.on_text(text)
        out = []
        while not provider.events.empty():
            out.append(provider.events.get_nowait())
        return out

    events = asyncio.run(scenario())
    said = "".join(e.token for e in events if isinstance(e, TextOut))
    lines = [e.text for e in events if isinstance(e, Transcript) and e.role == "event"]
    return said, lines, events


def test_no_scripted_answer_matches_so_the_best_passage_is_read_out_and_shown(scope):
    said, lines, _ = _turn(_provider(scope), "Can I wash the HEPA filter with water?")
    assert said.startswith("The HEPA filter sits inside the dustbin.")
    assert not said.startswith("HEPA filter:")  # the section label is not read out
    [line] = lines
    assert line.startswith("Knowledge for “Can I wash the HEPA filter with water?”: K2 owner's manual · passage ")


def test_a_spoken_turn_that_matches_nothing_gets_the_passage_not_the_keys(scope):
    provider = _provider(scope, transport="media_streams", variables={"SCRIPTED_SPEECH": "tones"})
    said_events = _turn(provider, "how long is the warranty", spoken=True)[2]
    agent = [e.text for e in said_events if isinstance(e, Transcript) and e.role == "agent"]
    assert agent and "warranty" in agent[-1].lower() and "press" not in agent[-1].lower()
    assert provider.dialogue.offered is False


def test_junk_is_not_read_out(scope):
    said, lines, _ = _turn(_provider(scope), "What's the weather like in Paris today?")
    assert said == DEFAULT_ANSWER and lines == []
    assert knowledge_best_answer(scope, "who won the football match last night") is None


def test_scripted_answers_and_rules_still_come_first(scope):
    said, lines, _ = _turn(_provider(scope), "What is the price of the HEPA filter?")
    assert said == "It costs ten euros." and lines == []
    _, lines, events = _turn(_provider(scope), "a human about the HEPA filter please")
    assert any(isinstance(e, Handover) for e in events) and lines == []


def test_without_knowledge_the_agent_says_it_cannot_help():
    said, lines, _ = _turn(_provider(KnowledgeScope()), "Can I wash the HEPA filter with water?")
    assert said == DEFAULT_ANSWER and lines == []


def test_the_threshold_is_the_share_of_the_callers_words_in_the_passage():
    text = "HEPA filter: The HEPA filter sits inside the dustbin. Never wash it with water."
    assert question_coverage("Can I wash the HEPA filters with water?", text) == 1.0
    assert question_coverage("weather in Paris", text) == 0.0
    assert question_coverage("hepa weather paris sing", text) < BEST_ANSWER_MIN_COVERAGE
