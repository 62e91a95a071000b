"""What a live call (or a Studio test chat) does with its version's knowledge, provider-independent.

- `knowledge_tool_schema()`: the `search_knowledge` function tool (flat shape, as `Provider.tools()` lists them).
- `knowledge_tool_run(scope, query)`: the tool's answer: the best passages as text with their sources, for the
  model, and one line for the transcript (which passages were used: source and position).
- `knowledge_turn_lookup(scope, caller_text)`: the every-turn option: the same, run on the caller's words before
  the model answers (None when the version does not retrieve every turn, or nothing matches).
- `knowledge_best_answer(scope, caller_text)`: scripted agents: the best passage's text when no scripted answer
  matches (None when nothing matches).

Each one reads the database: call them off the event loop (`channels.db.database_sync_to_async`).
`scope` is the `knowledge.selectors.KnowledgeScope` loaded once into the call's context.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from knowledge.search import PassageHit

KNOWLEDGE_TOOL = "search_knowledge"
TOOL_LIMIT = 3
TURN_LIMIT = 3
MAX_QUERY_CHARS = 500


def knowledge_tool_schema() -> dict:
    return {
        "type": "function",
        "name": KNOWLEDGE_TOOL,
        "description": ("Search the knowledge base (product documentation, policies, FAQs) for facts to answer "
                        "the caller. Answer only from the passages it returns; if none answers, say you don't know."),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string",
                                     "description": "What to look up, in a few words (e.g. 'return policy')."}},
            "required": ["query"],
            "additionalProperties": False,
        },
    }


def tool_query(arguments) -> str:
    """The `query` of a tool call's arguments (a JSON string or a dict); "" when there is none."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return arguments[:MAX_QUERY_CHARS]
    if isinstance(arguments, dict):
        return str(arguments.get("query") or "")[:MAX_QUERY_CHARS]
    return ""


@dataclass(frozen=True)
class Lookup:
    query: str
    hits: list[PassageHit] = field(default_factory=list)

    @property
    def sources(self) -> list[dict]:
        """What the transcript, test chat and call page show: source and position (and score) per passage."""
        return [{"source": h.source_title, "position": h.position, "score": h.score} for h in self.hits]

    def model_text(self) -> str:
        if not self.hits:
            return f"The knowledge base has nothing about {self.query!r}."
        return "\n\n".join(f"[{i}] ({h.citation})\n{h.text}" for i, h in enumerate(self.hits, 1))

    def transcript_line(self) -> str:
        if not self.hits:
            return f"Knowledge: nothing found for “{self.query}”"
        used = "; ".join(h.citation for h in self.hits)
        return f"Knowledge for “{self.query}”: {used}"


def knowledge_tool_run(scope, query) -> Lookup:
    """`query`: the words to look up, or the tool call's arguments (JSON text or a dict with "query")."""
    if not isinstance(query, str) or query.lstrip().startswith("{"):
        query = tool_query(query)
    query = query[:MAX_QUERY_CHARS]
    return Lookup(query=query, hits=scope.search(query, limit=TOOL_LIMIT) if query.strip() else [])


def knowledge_turn_lookup(scope, caller_text: str) -> Lookup | None:
    if scope is None or scope.empty or not scope.every_turn:
        return None
    lookup = Lookup(query=caller_text[:MAX_QUERY_CHARS], hits=scope.search(caller_text[:MAX_QUERY_CHARS],
                                                                            limit=TURN_LIMIT))
    return lookup if lookup.hits else None


def turn_message(lookup: Lookup) -> str:
    """The system message placed before the caller's turn when the version retrieves every turn."""
    return ("Passages from the knowledge base that may answer the caller's next message (answer only from "
            "them for facts; say you don't know if they don't cover it):\n\n" + lookup.model_text())


HEADING_PREFIX = re.compile(r"^[^:\n]{1,120}:\s+")
# Scripted agents read the passage out as it is: only when it holds at least this share of the question's words
# (so "what's the weather in Paris" does not get the warranty read out). Database-independent: the two
# vendors' scores are on different scales (ts_rank vs bm25).
BEST_ANSWER_MIN_COVERAGE = 0.4
_SUFFIXES = ("ing", "ies", "es", "ed", "ly", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def question_coverage(question: str, text: str) -> float:
    """The share of the question's searchable words (knowledge.search.query_terms) found in `text`, a word
    matching on a crude stem ("filters" ~ "filter", "charging" ~ "charge"): one passage, not per candidate."""
    from knowledge.search import TERM_RE, query_terms

    terms = query_terms(question)
    if not terms:
        return 0.0
    words = {_stem(w) for w in TERM_RE.findall(text.lower())}
    found = sum(1 for t in terms if _stem(t) in words or any(w.startswith(_stem(t)[:5]) for w in words
                                                            if len(_stem(t)) >= 5))
    return found / len(terms)


def knowledge_best_answer(scope, caller_text: str) -> tuple[str, Lookup] | None:
    """Scripted agents: (what to say, the lookup) from the best passage, without its section label; None when
    nothing matches or the best passage holds less than BEST_ANSWER_MIN_COVERAGE of the caller's words."""
    if scope is None or scope.empty:
        return None
    query = (caller_text or "")[:MAX_QUERY_CHARS]
    hits = scope.search(query, limit=1)
    if not hits or question_coverage(query, hits[0].text) < BEST_ANSWER_MIN_COVERAGE:
        return None
    return HEADING_PREFIX.sub("", hits[0].text, count=1), Lookup(query=query, hits=hits)
