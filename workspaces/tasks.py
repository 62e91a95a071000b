"""Celery tasks of the workspaces app (thin: call the service)."""
from celery import shared_task

from workspaces.services import worker_heartbeat_record


@shared_task(name="workspaces.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat(*, source: str = "beat") -> None:
    """Beat queues this every minute; the worker that runs it records that it is alive (admin: Worker heartbeats)."""
    from celery import current_task

    hostname = getattr(current_task.request, "hostname", None) or "eager"
    worker_heartbeat_record(hostname=hostname, source=source)
