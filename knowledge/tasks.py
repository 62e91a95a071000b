"""Knowledge tasks: thin wrappers around knowledge.services.

`source_fetch` fetches one web page source (through the outbound guard); `sources_refresh_due` (Celery beat,
every 10 minutes) hands out the pages whose `next_fetch_at` has come.
"""
from celery import shared_task

from knowledge import services
from knowledge.models import KnowledgeSource


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
