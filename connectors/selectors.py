"""Reads for phone connectors, their numbers and call sessions."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Prefetch, Q, Subquery

from agents.models import AgentVersion
from agents.selectors import Completeness, environment_completeness
from calls.models import CallSession
from connectors.models import ConnectorNumber, PhoneConnector
from telephony.models import PhoneNumber


def connectors_list(*, workspace):
    return (
        PhoneConnector.objects.filter(workspace=workspace)
        .select_related("agent", "environment", "pinned_version")
        .annotate(number_count=Count("numbers"), drift_count=Count("numbers", filter=Q(numbers__drift=True)))
        .order_by("-created_at")
    )


def connector_get(*, workspace, connector_id: int) -> PhoneConnector | None:
    return (
        PhoneConnector.objects.filter(workspace=workspace, pk=connector_id)
        .select_related("agent", "environment", "pinned_version", "workspace")
        .prefetch_related(Prefetch("numbers", queryset=ConnectorNumber.objects.select_related("phone_number")))
        .first()
    )


@dataclass(frozen=True)
class WebhookConnection:
    """What the signature check needs of the workspace's Twilio connection (`repr` hides the token)."""

    workspace_id: int
    account_sid: str
    auth_token: str = field(repr=False)

    @property
    def has_credentials(self) -> bool:
        return bool(self.account_sid and self.auth_token)


def connector_for_webhook(*, identifier: str) -> PhoneConnector | None:
    """One query: the connector, its agent's latest published version, and its workspace's Twilio account SID
    and auth token (subqueries; the token is decrypted by its field). See `webhook_connection`."""
    from telephony.models import TwilioConnection

    connection = TwilioConnection.objects.filter(workspace_id=OuterRef("workspace_id")).order_by()
    return (
        PhoneConnector.objects.filter(identifier=identifier)
        .select_related("agent__latest_version")
        .annotate(twilio_account_sid=Subquery(connection.values("account_sid")[:1]),
                  twilio_auth_token=Subquery(connection.values("auth_token")[:1]))
        .order_by()
        .first()
    )


def webhook_connection(*, connector: PhoneConnector) -> WebhookConnection | None:
    """The Twilio credentials loaded with `connector_for_webhook`, or None when the workspace has none."""
    account_sid = getattr(connector, "twilio_account_sid", None) or ""
    auth_token = getattr(connector, "twilio_auth_token", None) or ""
    if not account_sid or not auth_token:
        return None
    return WebhookConnection(workspace_id=connector.workspace_id, account_sid=account_sid, auth_token=auth_token)


def connector_version_resolve(*, connector: PhoneConnector) -> AgentVersion | None:
    """The agent version a call gets now: newest published, the draft, or the pinned one."""
    mode = connector.version_mode
    if mode == PhoneConnector.VersionMode.PINNED:
        version = connector.pinned_version
        if version is None or version.agent_id != connector.agent_id or not version.is_published:
            return None
        return version
    if mode == PhoneConnector.VersionMode.DRAFT:
        return AgentVersion.objects.filter(agent_id=connector.agent_id, state=AgentVersion.State.DRAFT).first()
    # Published: the newest published version, kept on the agent by agent_publish (no extra query
    # when the connector was loaded with select_related("agent__latest_version")).
    return connector.agent.latest_version


def connector_readiness(*, connector: PhoneConnector) -> tuple[AgentVersion | None, Completeness, str]:
    """(version, completeness, problem) where problem is '' when a call can be connected."""
    version = connector_version_resolve(connector=connector)
    if version is None:
        if connector.version_mode == PhoneConnector.VersionMode.PINNED:
            return None, Completeness(), "The pinned version does not exist any more."
        if connector.version_mode == PhoneConnector.VersionMode.PUBLISHED:
            return None, Completeness(), f"{connector.agent} has no published version yet: publish it first."
        return None, Completeness(), f"{connector.agent} has no draft."
    completeness = environment_completeness(version=version, environment_id=connector.environment_id)
    if not completeness.complete:
        return version, completeness, (
            f"The {connector.environment} environment lacks what {connector.agent} {version.label} needs — "
            f"{completeness.describe()}."
        )
    return version, completeness, ""


def attachable_numbers(*, workspace):
    return PhoneNumber.objects.filter(workspace=workspace).select_related("connector_link__connector").order_by(
        "phone_number"
    )


def dialer_numbers_exist(*, workspace) -> bool:
    """Does any of the workspace's numbers still ring the dialer (is attached to no connector)?"""
    return PhoneNumber.objects.filter(workspace=workspace, connector_link__isnull=True).exists()


def connector_number_get(*, connector: PhoneConnector, link_id: int) -> ConnectorNumber | None:
    return ConnectorNumber.objects.filter(connector=connector, pk=link_id).select_related("phone_number").first()


def connector_numbers_for_workspace(*, workspace_id: int):
    return ConnectorNumber.objects.filter(connector__workspace_id=workspace_id).select_related(
        "phone_number", "connector"
    )


def workspaces_with_attached_numbers() -> list[int]:
    return list(
        ConnectorNumber.objects.values_list("connector__workspace_id", flat=True).distinct().order_by(
            "connector__workspace_id"
        )
    )


def call_sessions_for_connector(*, connector: PhoneConnector, limit: int = 20):
    return CallSession.objects.filter(connector=connector).select_related("agent_version").order_by("-started_at")[
        :limit
    ]


def call_session_for_handover(*, connector: PhoneConnector, call_sid: str) -> CallSession | None:
    return CallSession.objects.filter(connector=connector, call_sid=call_sid).select_related("agent_version").first()
