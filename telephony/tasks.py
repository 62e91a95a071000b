"""Dialer settings tasks: thin wrappers that load by id and call the service.

Transient Twilio errors (429, 5xx, timeouts, dropped connections) are retried with
exponential backoff; permanent ones are recorded by the service and not retried.
"""
import logging

from celery import shared_task

from telephony import errors, services

logger = logging.getLogger(__name__)

MAX_RETRIES = services.VALIDATION_MAX_RETRIES


def backoff(retries: int) -> int:
    """2, 4, 8, 16, 32 … seconds, at most 5 minutes."""
    return min(300, 2 ** (retries + 1))


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def validate_connection(self, connection_id: int) -> None:
    try:
        services.connection_validate(connection_id=connection_id)
    except errors.TwilioTransientError as exc:
        if self.request.retries >= self.max_retries:
            services.connection_mark_unreachable(connection_id=connection_id, error=exc)
            return
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))


@shared_task
def revalidate_all_connections() -> int:
    """Celery beat: re-check every connection (a revoked token becomes "Phone system error"), pending
    caller-ID verifications, and number purchases left unfinished by a request or worker that died."""
    ids = services.connections_to_revalidate()
    for connection_id in ids:
        validate_connection.delay(connection_id)
    for workspace_id in services.workspaces_with_pending_caller_ids():
        check_caller_ids.delay(workspace_id)
    for purchase_id in services.purchases_to_resume():
        provision_number.delay(purchase_id)
    return len(ids)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def provision_number(self, purchase_id: int) -> None:
    from telephony.models import NumberPurchase

    if not NumberPurchase.objects.filter(pk=purchase_id).exists():
        return
    try:
        services.number_provision(purchase_id=purchase_id)
    except services.PurchaseInProgress as exc:
        raise self.retry(exc=exc, countdown=int(services._purchase_lease().total_seconds()))
    except errors.TwilioTransientError as exc:
        if self.request.retries >= self.max_retries:
            logger.warning("number purchase gave up", extra={"purchase_id": purchase_id})
            return
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))
    except (errors.TwilioError, services.DialerError) as exc:
        logger.info("number purchase refused", extra={"purchase_id": purchase_id, "code": getattr(exc, "code", None)})


@shared_task(bind=True, max_retries=MAX_RETRIES)
def check_caller_ids(self, workspace_id: int) -> int:
    from workspaces.models import Workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return 0
    try:
        return services.caller_ids_check(workspace=workspace)
    except services.DialerError:
        return 0
    except errors.TwilioTransientError as exc:
        if self.request.retries >= self.max_retries:
            return 0
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))
    except errors.TwilioError:
        return 0
