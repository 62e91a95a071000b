"""Knowledge tasks: thin wrappers around knowledge.services.

`source_fetch` fetches one web page source (through the outbound guard); `sources_refresh_due` (Celery beat,
every 10 minutes) hands out the pages whose `next_fetch_at` has come; `passages_embed` embeds a knowledge
base's new passages when an embeddings endpoint is configured (knowledge/embeddings.py), retried on network
errors.
"""
import logging

from celery import shared_task

from knowledge import services
from knowledge.embeddings import EmbeddingError
from knowledge.models import KnowledgeSource

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def source_fetch(source_id: int) -> str:
    source = KnowledgeSource.objects.filter(pk=source_id, kind=KnowledgeSource.Kind.URL).first()
    if source is None:  # deleted meanwhile
        return "skipped"
    return services.source_fetch(source=source).fetch_status


@shared_task
def sources_refresh_due() -> int:
    ids = services.sources_due()
    for source_id in ids:
        source_fetch.delay(source_id)
    return len(ids)


@shared_task(bind=True, acks_late=True, max_retries=5)
def passages_embed(self, knowledge_base_id: int) -> int:
    try:
        return services.passages_embed(knowledge_base_id=knowledge_base_id)
    except EmbeddingError as exc:
        if not exc.transient:
            logger.warning("knowledge embeddings refused", extra={"reason": str(exc)})
            return 0
        raise self.retry(exc=exc, countdown=30 * (self.request.retries + 1)) from None
