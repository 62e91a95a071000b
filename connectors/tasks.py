from celery import shared_task

from connectors import selectors, services


@shared_task(name="connectors.tasks.connector_numbers_check_all", ignore_result=True)
def connector_numbers_check_all() -> None:
    """Periodic: check each workspace's attached numbers (one task per workspace)."""
    for workspace_id in selectors.workspaces_with_attached_numbers():
        connector_numbers_check.delay(workspace_id)


@shared_task(name="connectors.tasks.connector_numbers_check", ignore_result=True)
def connector_numbers_check(workspace_id: int) -> dict:
    return services.connector_numbers_check(workspace_id=workspace_id)
