"""Reads of knowledge bases, and retrieval: `passages_search` is the one function every caller uses."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, Prefetch

from knowledge import search
from knowledge.models import KnowledgeBase, KnowledgeSnapshot, KnowledgeSource, Passage, VersionKnowledge
from knowledge.search import PassageHit

DEFAULT_LIMIT = 3


def passages_search(*, workspace_id: int, query: str, limit: int = DEFAULT_LIMIT, knowledge_base_ids=None,
                    snapshot_ids=None) -> list[PassageHit]:
    """The passages that best answer `query`, best first, with their score, source and position.

    Searches the live passages of `knowledge_base_ids` (a draft, the Try it box) or the frozen passages of
    `snapshot_ids` (a published version), and only those of `workspace_id`: ids of another workspace find
    nothing. PostgreSQL full-text search or SQLite FTS5, whichever the database is (knowledge/search.py)."""
    if (knowledge_base_ids is None) == (snapshot_ids is None):
        raise ValueError("Search either knowledge_base_ids or snapshot_ids.")
    return search.search(workspace_id=workspace_id, query=query, limit=limit,
                         knowledge_base_ids=knowledge_base_ids, snapshot_ids=snapshot_ids)


def knowledge_bases_list(*, workspace):
    return (KnowledgeBase.objects.filter(workspace=workspace)
            .annotate(source_count=Count("sources", distinct=True), last_edit=Max("sources__updated_at"))
            .order_by("name"))


def knowledge_base_get(*, workspace, knowledge_base_id: int) -> KnowledgeBase | None:
    return KnowledgeBase.objects.filter(workspace=workspace, pk=knowledge_base_id).first()


def sources_list(*, knowledge_base: KnowledgeBase):
    return KnowledgeSource.objects.filter(knowledge_base=knowledge_base).defer("text").order_by("title", "id")


def source_get(*, knowledge_base: KnowledgeBase, source_id: int) -> KnowledgeSource | None:
    return KnowledgeSource.objects.filter(knowledge_base=knowledge_base, pk=source_id).first()


def source_passages(*, source: KnowledgeSource, limit: int = 200):
    return list(Passage.objects.filter(source=source, knowledge_base_id=source.knowledge_base_id)
                .order_by("position")[:limit])


def knowledge_base_drafts(*, knowledge_base: KnowledgeBase) -> list[dict]:
    """Every agent of the workspace with its draft, and whether that draft uses this knowledge base."""
    from agents.models import Agent, AgentVersion

    agents = Agent.objects.filter(workspace_id=knowledge_base.workspace_id).prefetch_related(
        Prefetch("versions", queryset=AgentVersion.objects.filter(state=AgentVersion.State.DRAFT).prefetch_related(
            Prefetch("knowledge_links", queryset=VersionKnowledge.objects.filter(knowledge_base=knowledge_base),
                     to_attr="links_here")), to_attr="drafts")).order_by("name")
    rows = []
    for agent in agents:
        draft = agent.drafts[0] if agent.drafts else None
        link = draft.links_here[0] if draft is not None and draft.links_here else None
        rows.append({"agent": agent, "draft": draft, "used": link is not None,
                     "every_turn": bool(link and link.every_turn)})
    return rows


def snapshot_get(*, workspace, snapshot_id: int) -> KnowledgeSnapshot | None:
    return (KnowledgeSnapshot.objects.filter(workspace=workspace, pk=snapshot_id)
            .select_related("knowledge_base").first())


def snapshot_passages(*, snapshot: KnowledgeSnapshot, limit: int = 200) -> list[Passage]:
    return list(Passage.objects.filter(snapshot=snapshot).order_by("source_title", "position", "id")[:limit])


def snapshot_versions(*, snapshot: KnowledgeSnapshot) -> list[VersionKnowledge]:
    return list(VersionKnowledge.objects.filter(snapshot=snapshot).select_related("version__agent")
                .order_by("version__agent__name", "-version__number"))


def knowledge_base_published_users(*, knowledge_base: KnowledgeBase) -> list:
    """Published versions answering from a snapshot of this knowledge base."""
    return list(VersionKnowledge.objects.filter(knowledge_base=knowledge_base, snapshot__isnull=False)
                .select_related("version__agent", "snapshot").order_by("version__agent__name", "-version__number"))


# ---------------------------------------------------------------------------
# What a call searches


@dataclass(frozen=True)
class KnowledgeScope:
    """The knowledge one version answers from: loaded once with the call's context (no rows, only ids)."""

    workspace_id: int | None = None
    knowledge_base_ids: tuple[int, ...] = ()
    snapshot_ids: tuple[int, ...] = ()
    every_turn: bool = False

    @property
    def empty(self) -> bool:
        return not self.knowledge_base_ids and not self.snapshot_ids

    def search(self, query: str, *, limit: int = DEFAULT_LIMIT) -> list[PassageHit]:
        if self.empty or self.workspace_id is None:
            return []
        if self.snapshot_ids:
            return passages_search(workspace_id=self.workspace_id, query=query, limit=limit,
                                   snapshot_ids=self.snapshot_ids)
        return passages_search(workspace_id=self.workspace_id, query=query, limit=limit,
                               knowledge_base_ids=self.knowledge_base_ids)


def version_knowledge_scope(*, version) -> KnowledgeScope:
    """One query: a published version's snapshots, or a draft's live knowledge bases."""
    links = list(VersionKnowledge.objects.filter(version=version).values_list(
        "knowledge_base_id", "snapshot_id", "every_turn"))
    if not links:
        return KnowledgeScope()
    workspace_id = version.agent.workspace_id
    if version.is_published:
        return KnowledgeScope(workspace_id=workspace_id, snapshot_ids=tuple(s for _, s, _ in links if s),
                              every_turn=any(e for _, _, e in links))
    return KnowledgeScope(workspace_id=workspace_id, knowledge_base_ids=tuple(k for k, _, _ in links if k),
                          every_turn=any(e for _, _, e in links))


def version_knowledge_list(*, version) -> list[VersionKnowledge]:
    return list(VersionKnowledge.objects.filter(version=version).select_related("knowledge_base", "snapshot"))


def version_knowledge_diff(*, draft, base) -> list:
    """agents.hooks.version_diff_hooks: knowledge bases added, removed, edited since `base` was published,
    or switched to/from every-turn retrieval, as the diff's action rows."""
    from agents.selectors import ActionChange

    def entry(link, *, live):
        kb = link.knowledge_base
        name = kb.name if (live and kb) else link.name
        content_hash = (kb.content_hash if kb else "") if live else (link.snapshot.content_hash if link.snapshot else "")
        mode = "every caller turn" if link.every_turn else "when the model asks (search_knowledge)"
        return {"type": "knowledge", "name": name, "content_hash": content_hash, "every_turn": link.every_turn,
                "destination": f"knowledge base {name}, looked up {mode}"}

    new = {link.knowledge_base_id or f"s{link.snapshot_id}": entry(link, live=True)
           for link in version_knowledge_list(version=draft)}
    old = ({link.knowledge_base_id or f"s{link.snapshot_id}": entry(link, live=False)
            for link in version_knowledge_list(version=base)} if base is not None else {})
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        before, after = old.get(key), new.get(key)
        label = f"knowledge: {(after or before)['name']}"
        if before is None:
            changes.append(ActionChange(label, "added", None, after))
        elif after is None:
            changes.append(ActionChange(label, "removed", before, None))
        elif before["content_hash"] != after["content_hash"]:
            changes.append(ActionChange(label, "changed", before,
                                        {**after, "destination": after["destination"] + "; its content was edited"}))
        elif before["every_turn"] != after["every_turn"] or before["name"] != after["name"]:
            changes.append(ActionChange(label, "changed", before, after))
    return changes
