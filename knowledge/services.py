"""All writes of knowledge bases, their sources and passages, and of the knowledge agent versions use
(keyword-only, transactional)."""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.models import AgentVersion, ImmutableVersionError
from knowledge.extraction import ExtractionError, file_text, html_text, passages_split, text_checked
from knowledge.models import KnowledgeBase, KnowledgeSnapshot, KnowledgeSource, Passage, VersionKnowledge
from workspaces import outbound

logger = logging.getLogger(__name__)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Knowledge bases


@transaction.atomic
def knowledge_base_create(*, workspace, name: str, description: str = "") -> KnowledgeBase:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Enter a name."})
    if KnowledgeBase.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": "This workspace already has a knowledge base with this name."})
    try:
        with transaction.atomic():
            return KnowledgeBase.objects.create(workspace=workspace, name=name, description=description,
                                                content_hash=_digest())
    except IntegrityError:
        raise ValidationError({"name": "This workspace already has a knowledge base with this name."}) from None


@transaction.atomic
def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    """Drafts stop using it; published versions keep answering from their snapshots."""
    VersionKnowledge.objects.filter(knowledge_base=knowledge_base, snapshot__isnull=True).delete()
    knowledge_base.delete()


def _knowledge_base_rehash(knowledge_base: KnowledgeBase) -> None:
    hashes = KnowledgeSource.objects.filter(knowledge_base=knowledge_base).order_by("id").values_list(
        "title", "content_hash")
    content_hash = _digest(*(f"{title}\x01{h}" for title, h in hashes))
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(content_hash=content_hash, updated_at=timezone.now())
    knowledge_base.content_hash = content_hash


def _passages_replace(*, source: KnowledgeSource, text: str) -> None:
    """The source's live passages, cut anew from `text` (in the caller's transaction)."""
    Passage.objects.filter(source=source, knowledge_base_id=source.knowledge_base_id).delete()
    pieces = passages_split(text)
    workspace_id = KnowledgeBase.objects.values_list("workspace_id", flat=True).get(pk=source.knowledge_base_id)
    Passage.objects.bulk_create(
        Passage(workspace_id=workspace_id, knowledge_base_id=source.knowledge_base_id, source=source,
                source_title=source.title, position=i, text=piece)
        for i, piece in enumerate(pieces, 1)
    )
    source.text = text
    source.content_hash = _digest(text)
    source.passage_count = len(pieces)
    _embeddings_queue(source.knowledge_base_id)


def _embeddings_queue(knowledge_base_id: int) -> None:
    """With an embeddings endpoint configured: embed the knowledge base's new passages after the commit, in a
    Celery task (never on the request)."""
    from knowledge import embeddings, tasks

    if embeddings.embeddings_config() is not None:
        transaction.on_commit(lambda: tasks.passages_embed.delay(knowledge_base_id))


def _title(title: str, fallback: str) -> str:
    return ((title or "").strip() or fallback or "Untitled")[:200]


@transaction.atomic
def source_text_add(*, knowledge_base: KnowledgeBase, title: str, text: str) -> KnowledgeSource:
    try:
        text = text_checked(text)
    except ExtractionError as exc:
        raise ValidationError({"text": str(exc)}) from None
    source = KnowledgeSource(knowledge_base=knowledge_base, kind=KnowledgeSource.Kind.TEXT,
                             title=_title(title, text.split("\n", 1)[0][:80]))
    source.save()
    _passages_replace(source=source, text=text)
    source.save()
    _knowledge_base_rehash(knowledge_base)
    return source


@transaction.atomic
def source_text_update(*, source: KnowledgeSource, title: str, text: str) -> KnowledgeSource:
    if source.kind != KnowledgeSource.Kind.TEXT:
        raise ValidationError("Only typed text can be edited here: upload the file again, or re-fetch the page.")
    try:
        text = text_checked(text)
    except ExtractionError as exc:
        raise ValidationError({"text": str(exc)}) from None
    source.title = _title(title, source.title)
    _passages_replace(source=source, text=text)
    source.save()
    Passage.objects.filter(source=source, knowledge_base_id=source.knowledge_base_id).update(
        source_title=source.title)
    _knowledge_base_rehash(source.knowledge_base)
    return source


def source_file_add(*, knowledge_base: KnowledgeBase, name: str, data: bytes, title: str = "") -> KnowledgeSource:
    """Extract first (outside the transaction: no row for a file we cannot read), then store."""
    try:
        text = file_text(name=name, data=data)
    except ExtractionError as exc:
        raise ValidationError({"file": str(exc)}) from None
    with transaction.atomic():
        source = KnowledgeSource(knowledge_base=knowledge_base, kind=KnowledgeSource.Kind.FILE,
                                 title=_title(title, name), file_name=name[:255])
        source.save()
        _passages_replace(source=source, text=text)
        source.save()
        _knowledge_base_rehash(knowledge_base)
    return source


@transaction.atomic
def source_url_add(*, knowledge_base: KnowledgeBase, url: str, title: str = "",
                   refresh_hours: int = 24) -> KnowledgeSource:
    """A web page: stored now, fetched by the task knowledge.tasks.source_fetch (after commit)."""
    reason = outbound.url_refusal(url)
    if reason:
        raise ValidationError({"url": reason})
    source = KnowledgeSource.objects.create(
        knowledge_base=knowledge_base, kind=KnowledgeSource.Kind.URL, title=_title(title, url), url=url,
        refresh_hours=refresh_hours, fetch_status=KnowledgeSource.FetchStatus.PENDING, next_fetch_at=timezone.now())
    from knowledge import tasks

    transaction.on_commit(lambda: tasks.source_fetch.delay(source.pk))
    return source


@transaction.atomic
def source_delete(*, source: KnowledgeSource) -> None:
    knowledge_base = source.knowledge_base
    Passage.objects.filter(source=source, knowledge_base=knowledge_base).delete()
    source.delete()
    _knowledge_base_rehash(knowledge_base)


def _page_get(url: str) -> tuple[str, str]:
    """(title, text) of the page at `url`, through the outbound guard; OutboundRefused, httpx errors or
    ExtractionError otherwise."""
    limit = settings.KNOWLEDGE_MAX_PAGE_BYTES
    with outbound.client(timeout=settings.KNOWLEDGE_FETCH_TIMEOUT) as http:
        with http.stream("GET", url, headers={"Accept": "text/html, text/plain, text/markdown;q=0.9"}) as response:
            if response.status_code >= 400:
                raise ExtractionError(f"The page answered HTTP {response.status_code}.")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ExtractionError(f"The page is larger than {limit / 1048576:.0f} MB.")
            content_type = response.headers.get("content-type", "").lower()
            encoding = response.encoding or "utf-8"
    try:
        raw = bytes(body).decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        raw = bytes(body).decode("utf-8", errors="replace")
    if "html" in content_type or raw.lstrip()[:1] == "<":
        title, text = html_text(raw)
    elif content_type.startswith("text/") or not content_type:
        title, text = "", raw
    else:
        raise ExtractionError(f"The page is {content_type.split(';')[0]}, not a web page or text.")
    return title, text_checked(text, name="The page")


def source_fetch(*, source: KnowledgeSource) -> KnowledgeSource:
    """Fetch a web page source now (the network outside any transaction), then store its passages or the
    failure. A failed fetch keeps the passages of the last good one."""
    now = timezone.now()
    title = ""
    try:
        title, text = _page_get(source.url)
        error = ""
    except outbound.OutboundRefused as exc:
        text, error = None, str(exc)
    except ExtractionError as exc:
        text, error = None, str(exc)
    except httpx.HTTPError as exc:
        text, error = None, f"The page could not be fetched ({type(exc).__name__})."
    with transaction.atomic():
        locked = KnowledgeSource.objects.select_for_update().filter(pk=source.pk).first()
        if locked is None:  # deleted meanwhile
            return source
        locked.fetched_at = now
        locked.next_fetch_at = now + timedelta(hours=locked.refresh_hours) if locked.refresh_hours else None
        if text is None:
            locked.fetch_status, locked.fetch_error = KnowledgeSource.FetchStatus.FAILED, error[:500]
        else:
            locked.fetch_status, locked.fetch_error = KnowledgeSource.FetchStatus.OK, ""
            if locked.title == locked.url and title:
                locked.title = title[:200]
            if _digest(text) != locked.content_hash or not locked.passage_count:
                _passages_replace(source=locked, text=text)
        locked.save()
        if text is not None:
            _knowledge_base_rehash(locked.knowledge_base)
    if text is None:
        logger.info("knowledge page fetch failed", extra={"source": source.pk, "error": error})
    return locked


def sources_due(*, now=None) -> list[int]:
    now = now or timezone.now()
    return list(KnowledgeSource.objects.filter(kind=KnowledgeSource.Kind.URL, next_fetch_at__lte=now)
                .order_by("next_fetch_at").values_list("pk", flat=True)[:500])


# ---------------------------------------------------------------------------
# Agent versions and their knowledge


@transaction.atomic
def version_knowledge_set(*, draft: AgentVersion, knowledge_base: KnowledgeBase, used: bool,
                          every_turn: bool = False) -> VersionKnowledge | None:
    """Attach (used=True) or detach a knowledge base to/from an agent's draft."""
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Knowledge can only be changed on the draft.")
    if draft.agent.workspace_id != knowledge_base.workspace_id:
        raise ValidationError("This knowledge base belongs to another workspace.")
    link = VersionKnowledge.objects.filter(version=draft, knowledge_base=knowledge_base).first()
    if not used:
        if link is not None:
            link.delete()
        return None
    if link is None:
        link = VersionKnowledge(version=draft, knowledge_base=knowledge_base)
    link.every_turn = every_turn
    link.save()
    return link


def _snapshot_for(knowledge_base: KnowledgeBase) -> KnowledgeSnapshot:
    """The knowledge base's passages as they are now, frozen: the newest snapshot if nothing changed since."""
    knowledge_base = KnowledgeBase.objects.select_for_update().get(pk=knowledge_base.pk)
    latest = knowledge_base.snapshots.order_by("-id").first()
    if latest is not None and latest.content_hash == knowledge_base.content_hash and latest.name == knowledge_base.name:
        return latest
    titles = list(KnowledgeSource.objects.filter(knowledge_base=knowledge_base).order_by("title")
                  .values_list("title", flat=True))
    snapshot = KnowledgeSnapshot.objects.create(
        workspace_id=knowledge_base.workspace_id, knowledge_base=knowledge_base, name=knowledge_base.name,
        content_hash=knowledge_base.content_hash, source_titles=titles)
    count = 0
    batch = []
    for p in Passage.objects.filter(knowledge_base=knowledge_base).order_by("id").values(
            "source_id", "source_title", "position", "text", "embedding", "embedding_model").iterator(chunk_size=2000):
        batch.append(Passage(workspace_id=knowledge_base.workspace_id, snapshot=snapshot, **p))
        if len(batch) >= 2000:
            Passage.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    Passage.objects.bulk_create(batch)
    count += len(batch)
    _snapshot_vectors_copy(knowledge_base, snapshot)
    KnowledgeSnapshot.objects.filter(pk=snapshot.pk).update(passage_count=count)
    snapshot.passage_count = count
    return snapshot


def _snapshot_vectors_copy(knowledge_base: KnowledgeBase, snapshot: KnowledgeSnapshot) -> None:
    """Where the pgvector column exists: the frozen passages get their live passage's vector too (a source's
    passages are unique by position), in one statement."""
    from knowledge import embeddings

    if not embeddings.pgvector_column(connection):
        return
    with connection.cursor() as cursor:
        cursor.execute("UPDATE knowledge_passage s SET embedding_vector = p.embedding_vector FROM knowledge_passage p "
                       "WHERE s.snapshot_id = %s AND p.knowledge_base_id = %s AND p.embedding_vector IS NOT NULL "
                       "AND p.source_id = s.source_id AND p.position = s.position "
                       "AND p.embedding_model = s.embedding_model", [snapshot.pk, knowledge_base.pk])


def passages_embed(*, knowledge_base_id: int) -> int:
    """Embed the knowledge base's passages that have no embedding from the configured model (batches of
    embeddings.BATCH, the network outside any transaction); returns how many were stored. A snapshot taken
    before this finished keeps its passages without embeddings: its searches are full text only."""
    from knowledge import embeddings

    config = embeddings.embeddings_config()
    if config is None:
        return 0
    stored = 0
    while True:
        todo = list(Passage.objects.filter(knowledge_base_id=knowledge_base_id)
                    .exclude(embedding_model=config.model, embedding__isnull=False)
                    .order_by("id").values_list("id", "text")[:embeddings.BATCH])
        if not todo:
            return stored
        vectors = embeddings.embed([text for _, text in todo], config=config, timeout=embeddings.TASK_TIMEOUT)
        rows = [Passage(id=pk, embedding=embeddings.pack(v), embedding_model=config.model)
                for (pk, _), v in zip(todo, vectors)]
        with transaction.atomic():
            # a passage deleted meanwhile is simply not updated
            Passage.objects.bulk_update(rows, ["embedding", "embedding_model"])
            if embeddings.pgvector_column(connection):
                with connection.cursor() as cursor:
                    cursor.executemany("UPDATE knowledge_passage SET embedding_vector = %s::vector WHERE id = %s",
                                       [(embeddings.vector_literal(v), pk) for (pk, _), v in zip(todo, vectors)])
        stored += len(rows)


def version_knowledge_copy(*, source: AgentVersion, target: AgentVersion, reason: str) -> None:
    """agents.hooks.version_copy_hooks: runs inside agents' publish / new draft / restore transaction.

    publish: each knowledge base the draft uses is frozen into a snapshot the new version points at.
    draft / restore: the draft uses the same knowledge bases, live (a deleted one is dropped)."""
    links = list(VersionKnowledge.objects.filter(version=source).select_related("knowledge_base", "snapshot"))
    if reason == "restore":
        VersionKnowledge.objects.filter(version=target).delete()
    rows = []
    for link in links:
        if reason == "publish":
            if link.knowledge_base is None:
                continue
            rows.append(VersionKnowledge(version=target, knowledge_base=link.knowledge_base,
                                         snapshot=_snapshot_for(link.knowledge_base), every_turn=link.every_turn))
        elif link.knowledge_base_id is not None:
            rows.append(VersionKnowledge(version=target, knowledge_base_id=link.knowledge_base_id,
                                         every_turn=link.every_turn))
    # bulk_create: the target may be a published version being created (its links refuse save()).
    VersionKnowledge.objects.bulk_create(rows)
