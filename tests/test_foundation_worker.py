"""A real Celery worker process (started by the test on the configured broker) runs a task end to end."""
import pytest

from tests.fixtures_celery import wait_for
from workspaces.models import WorkerHeartbeat
from workspaces.tasks import worker_heartbeat

pytestmark = pytest.mark.worker


def test_real_worker_runs_task_and_result_is_in_database(celery_worker):
    worker = celery_worker()
    assert worker.alive

    worker_heartbeat.delay(source="test")

    beat = wait_for(lambda: WorkerHeartbeat.objects.filter(last_source="test").first(), timeout=60,
                    message=f"the worker to record a heartbeat; worker log:\n{worker.log()}")
    # Recorded by the worker process (its node name), not run eagerly in this process.
    assert beat.hostname.startswith("test-")
    assert beat.hostname == worker.hostname.replace("%h", beat.hostname.split("@", 1)[1])
    assert beat.beats == 1

    worker_heartbeat.delay(source="test")
    wait_for(lambda: WorkerHeartbeat.objects.get(pk=beat.pk).beats == 2, timeout=60, message="a second heartbeat")


def test_in_process_tasks_are_eager_outside_worker_tests(db):
    """Unit tests run tasks in-process; only `celery_worker` switches that off."""
    worker_heartbeat.delay(source="eager")
    assert WorkerHeartbeat.objects.get(last_source="eager").hostname
