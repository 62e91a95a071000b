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


@shared_task(name="calls.tasks.call_analysis_compute", bind=True, ignore_result=True, acks_late=True,
             max_retries=5)
def call_analysis_compute(self, call_session_id: int, force: bool = False) -> None:
    """Post-call analysis (calls/services/analysis.py); transient vendor errors retried with exponential backoff."""
    from calls.services import analysis

    try:
        analysis.call_analysis_compute(call_session_id=call_session_id, force=force,
                                       final_attempt=self.request.retries >= self.max_retries)
    except analysis.TransientAnalysisError as exc:
        raise self.retry(exc=exc, countdown=analysis.retry_delay(self.request.retries))
