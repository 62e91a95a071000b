"""All writes of phone connectors and attached numbers; the incoming-call webhook's answer.

A call's admission (the CallSession, the stream token, the TwiML) is `calls.services.admission`; the names below
that come from there are re-exported for the connector's webhook and older callers."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from calls.models import CallSession
from calls.services.admission import (  # noqa: F401 - re-exported
    APOLOGY,
    PARAMS_OF_INTEREST,
    STREAM_TOKEN_MAX_AGE,
    STREAM_TOKEN_SALT,
    InvalidStreamToken,
    apology_twiml,
    call_session_admit,
    relay_attributes,
    stream_token_consume,
    stream_token_issue,
    stream_twiml,
)
from connectors.models import ConnectorNumber, PhoneConnector
from workspaces.models import AuditEntry
from workspaces.services import audit_record

logger = logging.getLogger(__name__)



# ---------------------------------------------------------------------------
# Connectors


def _check_connector_fields(*, workspace, agent, environment, version_mode, pinned_version):
    from django.core.exceptions import ValidationError

    from agents.models import AgentVersion

    errors = {}
    if agent.workspace_id != workspace.pk:
        errors["agent"] = "Choose one of this workspace's agents."
    if environment.workspace_id != workspace.pk:
        errors["environment"] = "Choose one of this workspace's environments."
    if version_mode == PhoneConnector.VersionMode.PINNED:
        if pinned_version is None:
            errors["pinned_version"] = "Choose the version to pin."
        elif pinned_version.agent_id != agent.pk or pinned_version.state != AgentVersion.State.PUBLISHED:
            errors["pinned_version"] = f"Choose a published version of {agent}."
    if errors:
        raise ValidationError(errors)
    return pinned_version if version_mode == PhoneConnector.VersionMode.PINNED else None


@transaction.atomic
def connector_create(*, workspace, agent, environment, version_mode: str, pinned_version=None, name: str = "",
                     type: str = "twilio", actor=None) -> PhoneConnector:
    """Creates the connector; it starts enabled only when a call could be connected right now."""
    from connectors.selectors import connector_readiness

    pinned = _check_connector_fields(workspace=workspace, agent=agent, environment=environment,
                                     version_mode=version_mode, pinned_version=pinned_version)
    connector = PhoneConnector(workspace=workspace, name=name, type=type, agent=agent, environment=environment,
                               version_mode=version_mode, pinned_version=pinned, enabled=False)
    connector.save()
    _, _, problem = connector_readiness(connector=connector)
    if not problem:
        connector.enabled = True
        connector.save(update_fields=["enabled", "updated_at"])
    if pinned is not None:
        _audit_pinned(connector=connector, actor=actor)
    return connector


def _audit_pinned(*, connector: PhoneConnector, actor) -> None:
    version = connector.pinned_version
    audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_VERSION_PINNED,
                 target=connector, details={"agent": str(connector.agent), "version": version.number,
                                            "version_id": version.pk})


@transaction.atomic
def connector_update(*, connector: PhoneConnector, agent, environment, version_mode: str, pinned_version=None,
                     name: str = "", actor=None) -> PhoneConnector:
    from connectors.selectors import connector_readiness

    pinned = _check_connector_fields(workspace=connector.workspace, agent=agent, environment=environment,
                                     version_mode=version_mode, pinned_version=pinned_version)
    previous_pin = connector.pinned_version_id
    connector.name, connector.agent, connector.environment = name, agent, environment
    connector.version_mode, connector.pinned_version = version_mode, pinned
    fields = ["name", "agent", "environment", "version_mode", "pinned_version", "updated_at"]
    if connector.enabled:
        _, _, problem = connector_readiness(connector=connector)
        if problem:
            connector.enabled = False
            fields.append("enabled")
    connector.save(update_fields=fields)
    if pinned is not None and pinned.pk != previous_pin:
        _audit_pinned(connector=connector, actor=actor)
    return connector


@transaction.atomic
def connector_pin(*, connector: PhoneConnector, version) -> PhoneConnector:
    """The connector answers with `version` (a published version of its agent) until changed again."""
    return connector_update(connector=connector, agent=connector.agent, environment=connector.environment,
                            version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=version,
                            name=connector.name)


@transaction.atomic
def connector_enable(*, connector: PhoneConnector) -> PhoneConnector:
    """Refuses (ValidationError naming what is missing) when a call could not be connected."""
    from django.core.exceptions import ValidationError

    from connectors.selectors import connector_readiness

    _, _, problem = connector_readiness(connector=connector)
    if problem:
        raise ValidationError(f"Cannot enable: {problem}")
    connector.enabled = True
    connector.save(update_fields=["enabled", "updated_at"])
    return connector


@transaction.atomic
def connector_disable(*, connector: PhoneConnector) -> PhoneConnector:
    connector.enabled = False
    connector.save(update_fields=["enabled", "updated_at"])
    return connector


def connector_alert_set(*, connector: PhoneConnector, text: str) -> None:
    now = timezone.now()
    PhoneConnector.objects.filter(pk=connector.pk).update(alert_text=text[:2000], alert_at=now)
    connector.alert_text, connector.alert_at = text, now


@transaction.atomic
def connector_alert_clear(*, connector: PhoneConnector) -> None:
    connector.alert_text, connector.alert_at = "", None
    connector.save(update_fields=["alert_text", "alert_at", "updated_at"])


# ---------------------------------------------------------------------------
# Numbers: one-click attach and drift checks


def _credentials(workspace):
    from django.core.exceptions import ValidationError

    from telephony.selectors import connection_get

    connection = connection_get(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise ValidationError("Connect your Twilio account first (Settings → Dialer).")
    return connection.credentials()


def connector_number_attach(*, connector: PhoneConnector, phone_number, actor=None) -> ConnectorNumber:
    """Point the number's voice URL at the connector (HTTP GET) through the gateway, then record the link.

    The Twilio update is idempotent (same values every time), so nothing is written when it fails and
    trying again is safe. Raises ValidationError (our side) or dialer.errors.TwilioError.
    """
    from django.core.exceptions import ValidationError

    from telephony import twilio_gateway

    if phone_number.workspace_id != connector.workspace_id:
        raise ValidationError("Choose one of this workspace's numbers.")
    creds = _credentials(connector.workspace)
    observed = twilio_gateway.incoming_number_update(
        creds=creds, number_sid=phone_number.sid, voice_url=connector.webhook_url, voice_method="GET",
        voice_application_sid="",
    )
    with transaction.atomic():
        link, _ = ConnectorNumber.objects.select_for_update().update_or_create(
            phone_number=phone_number,
            defaults={"connector": connector, "drift": False, "last_checked_at": timezone.now(),
                      "observed_voice_url": observed.voice_url or "", "observed_voice_method": observed.voice_method or "",
                      "check_error": ""},
        )
        audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_NUMBER_ATTACHED,
                     target=connector, details={"phone_number": phone_number.phone_number})
    return link


def connector_number_detach(*, link: ConnectorNumber, actor=None) -> None:
    """Forget the link. When the number still points at this connector, hand it back to the browser dialer
    (the workspace's TwiML app, so its calls ring the members' dialers again), or clear its voice URL when
    the workspace has no TwiML app yet."""
    from telephony import errors, twilio_gateway
    from telephony.selectors import connection_get

    connector = link.connector
    try:
        creds = _credentials(connector.workspace)
        current = twilio_gateway.incoming_number_fetch(creds=creds, number_sid=link.phone_number.sid)
        if (current.voice_url or "") == connector.webhook_url:
            connection = connection_get(workspace=connector.workspace)
            app_sid = connection.twiml_app_sid if connection is not None else ""
            twilio_gateway.incoming_number_update(creds=creds, number_sid=link.phone_number.sid, voice_url="",
                                                  voice_application_sid=app_sid or None)
    except errors.TwilioNotFound:
        pass
    with transaction.atomic():
        ConnectorNumber.objects.filter(pk=link.pk).delete()
        audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_NUMBER_DETACHED,
                     target=connector, details={"phone_number": link.phone_number.phone_number})


def connector_numbers_check(*, workspace_id: int) -> dict:
    """Fetch each attached number's voice config and flag drift. Returns counts (checked, drifted, errors)."""
    from connectors.selectors import connector_numbers_for_workspace
    from telephony import errors, twilio_gateway
    from telephony.models import TwilioConnection

    counts = {"checked": 0, "drifted": 0, "errors": 0}
    connection = TwilioConnection.objects.filter(workspace_id=workspace_id).first()
    links = list(connector_numbers_for_workspace(workspace_id=workspace_id))
    if connection is None or not connection.has_credentials:
        return counts
    creds = connection.credentials()
    for link in links:
        now = timezone.now()
        try:
            number = twilio_gateway.incoming_number_fetch(creds=creds, number_sid=link.phone_number.sid)
        except errors.TwilioNotFound:
            drift, url, method, problem = True, "", "", "The number is no longer on the Twilio account."
        except errors.TwilioError as exc:
            counts["errors"] += 1
            ConnectorNumber.objects.filter(pk=link.pk).update(check_error=exc.display()[:255], last_checked_at=now)
            continue
        else:
            url, method = number.voice_url or "", (number.voice_method or "").upper()
            drift = url != link.connector.webhook_url or bool(number.voice_application_sid)
            problem = ""
        counts["checked"] += 1
        counts["drifted"] += int(drift)
        ConnectorNumber.objects.filter(pk=link.pk).update(
            drift=drift, observed_voice_url=url[:500], observed_voice_method=method[:8], last_checked_at=now,
            check_error=problem,
        )
    return counts


# ---------------------------------------------------------------------------
# The incoming-call webhook: the connector resolves the version; the call's admission is calls/'s.


def connect_twiml(*, connector: PhoneConnector, version, token: str) -> str:
    return stream_twiml(version=version, token=token, action_url=connector.handover_url)


def inbound_call_answer(*, connector: PhoneConnector, params: dict) -> tuple[CallSession | None, str]:
    """Resolve the connector's version, then admit the call (`calls.services.admission.call_session_admit`:
    the session, idempotent on CallSid, and the TwiML answer). No Twilio or model-provider calls. The common
    case (a new call, Published mode) costs four round trips to the database: the connector (loaded by the
    view), the environment's names, one INSERT that also stores the stream token's nonce, and the environment's
    webhook endpoints. A call that cannot be connected is recorded, apologised to and shown on the connector."""
    from connectors.selectors import connector_readiness

    call_sid = (params.get("CallSid") or "").strip()[:64]
    if not call_sid:
        return None, apology_twiml()
    if not connector.enabled:
        version, problem = None, "The connector is disabled."
    else:
        version, _, problem = connector_readiness(connector=connector)
    admitted = call_session_admit(call_sid=call_sid, workspace_id=connector.workspace_id, connector=connector,
                                  environment_id=connector.environment_id, version=version, problem=problem,
                                  params=params, action_url=connector.handover_url)
    if problem and not admitted.retry:
        connector_alert_set(connector=connector, text=f"Call {call_sid} from {params.get('From', '')[:64] or 'unknown'} "
                                                      f"was not connected: {problem}")
        logger.warning("inbound call rejected", extra={"connector_id": connector.pk, "call_sid": call_sid,
                                                        "reason": problem})
    return admitted.session, admitted.twiml
