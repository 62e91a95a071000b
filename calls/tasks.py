from celery import shared_task

from calls.services import recordings


@shared_task(name="calls.tasks.recordings_purge_expired", ignore_result=True)
def recordings_purge_expired() -> int:
    """Periodic: delete recordings past their environment's retention, at Twilio and here (each one logged)."""
    return len(recordings.recordings_purge_expired())
