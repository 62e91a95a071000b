from celery import shared_task

from calls.services import recordings


@shared_task(name="calls.tasks.recordings_purge_expired", ignore_result=True)
def recordings_purge_expired() -> int:
    """Periodic: delete recordings past their environment's retention, at Twilio and here (each one logged)."""
    return len(recordings.recordings_purge_expired())


@shared_task(name="calls.tasks.test_run_execute", ignore_result=True, acks_late=True)
def test_run_execute(run_id: int) -> None:
    """A test suite run: every scenario of the agent with the text engine (see calls/services/test_runs.py)."""
    from calls.services import test_runs

    test_runs.test_run_execute(run_id=run_id)
