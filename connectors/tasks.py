from celery import shared_task

from . import selectors, services


@shared_task(name="connectors.tasks.connector_numbers_check_all", ignore_result=True)
def connector_numbers_check_all() -> None:
    """Periodic: check each workspace's attached numbers (one task per workspace)."""
    for workspace_id in selectors.workspaces_with_attached_numbers():
        connector_numbers_check.delay(workspace_id)


@shared_task(name="connectors.tasks.connector_numbers_check", ignore_result=True)
def connector_numbers_check(workspace_id: int) -> dict:
    return services.connector_numbers_check(workspace_id=workspace_id)


@shared_task(name="connectors.tasks.recordings_purge_expired", ignore_result=True)
def recordings_purge_expired() -> int:
    """Periodic: delete recordings past their environment's retention, at Twilio and here (each one logged)."""
    from . import call_services

    return len(call_services.recordings_purge_expired())
