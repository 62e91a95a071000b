"""Reads for phone connectors, their numbers and call sessions."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.db import connection as db
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery

from agents.models import Agent, AgentVersion
from agents.selectors import environment_complete_sql, environment_completeness, Completeness
from dialer.models import PhoneNumber
from workspaces import sql

from .models import CallSession, ConnectorNumber, PhoneConnector


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
    from dialer.models import TwilioConnection

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


@dataclass(frozen=True)
class WebhookCall:
    """What the incoming-call webhook needs, read in one query (`webhook_call_context`).

    `ready_version` is set only when a call can be connected right now (the connector is enabled, the
    mode resolves to a version, the environment has everything it needs): the same decision as
    `connector_readiness`. When it is None the caller asks `connector_readiness`, which also says why.
    """

    connector: PhoneConnector  # id, workspace, name, agent, environment, mode, pinned version, identifier, enabled
    connection: WebhookConnection | None
    ready_version: AgentVersion | None  # id, agent, number, state, language, voice, transport


_CONNECTOR_FIELDS = ("id", "workspace", "name", "agent", "environment", "version_mode", "pinned_version",
                     "identifier", "enabled")
_VERSION_FIELDS = ("id", "agent", "number", "state", "language", "voice", "transport")


@functools.cache
def _webhook_call_sql(vendor: str) -> str:
    from dialer.models import TwilioConnection

    col, table = sql.column, sql.table
    mode = col(PhoneConnector, "version_mode", "pc")
    modes = PhoneConnector.VersionMode
    assert all(m.isidentifier() for m in modes.values)  # inlined as SQL literals below
    # The version a call gets now, as connector_version_resolve: the agent's draft, the pinned version (its
    # agent and state are checked in Python, as there), else the agent's latest published version.
    version_id = (
        f"CASE WHEN {mode} = '{modes.DRAFT}' THEN (SELECT {col(AgentVersion, 'id', 'd')} FROM {table(AgentVersion)} d "
        f"WHERE {col(AgentVersion, 'agent', 'd')} = {col(PhoneConnector, 'agent', 'pc')} "
        f"AND {col(AgentVersion, 'state', 'd')} = '{AgentVersion.State.DRAFT}' LIMIT 1) "
        f"WHEN {mode} = '{modes.PINNED}' THEN {col(PhoneConnector, 'pinned_version', 'pc')} "
        f"ELSE {col(Agent, 'latest_version', 'a')} END"
    )
    complete = environment_complete_sql(vendor=vendor, version="v",
                                        environment_id=col(PhoneConnector, "environment", "pc"))
    return (
        f"SELECT {', '.join(col(PhoneConnector, f, 'pc') for f in _CONNECTOR_FIELDS)}, "
        f"{', '.join(col(AgentVersion, f, 'v') for f in _VERSION_FIELDS)}, {complete}, "
        f"{col(TwilioConnection, 'account_sid', 'c')}, {col(TwilioConnection, 'auth_token', 'c')} "
        f"FROM {table(PhoneConnector)} pc "
        f"INNER JOIN {table(Agent)} a ON {col(Agent, 'id', 'a')} = {col(PhoneConnector, 'agent', 'pc')} "
        f"LEFT JOIN {table(AgentVersion)} v ON {col(AgentVersion, 'id', 'v')} = ({version_id}) "
        f"LEFT JOIN {table(TwilioConnection)} c ON {col(TwilioConnection, 'workspace', 'c')} = "
        f"{col(PhoneConnector, 'workspace', 'pc')} "
        f"WHERE {col(PhoneConnector, 'identifier', 'pc')} = %s"
    )


@functools.cache
def _attnames(model, names: tuple[str, ...]) -> list[str]:
    return [model._meta.get_field(name).attname for name in names]


def webhook_call_context(*, identifier: str) -> WebhookCall | None:
    """The connector, the version a call gets now, its readiness and the Twilio credentials: one query.

    The incoming-call webhook runs for every call Twilio sends us; through the ORM its reads
    (`connector_for_webhook`, `environment_completeness`) cost several times what PostgreSQL spends on
    them (docs/performance.md), so the common case is read here as one prepared statement. The
    connector and version are model instances holding only the columns the webhook uses (others load
    on access). None when no connector has this identifier.
    """
    row = sql.fetch_one(_webhook_call_sql(db.vendor), [identifier])
    if row is None:
        return None
    n, m = len(_CONNECTOR_FIELDS), len(_VERSION_FIELDS)
    values = list(row[:n])
    values[-1] = bool(values[-1])  # enabled (SQLite answers 0/1)
    connector = PhoneConnector.from_db(db.alias, _attnames(PhoneConnector, _CONNECTOR_FIELDS), values)
    version_row, complete, account_sid, auth_token = row[n:n + m], row[n + m], row[n + m + 1], row[n + m + 2]
    version = None
    if version_row[0] is not None and complete and connector.enabled:
        version = AgentVersion.from_db(db.alias, _attnames(AgentVersion, _VERSION_FIELDS), list(version_row))
        if connector.version_mode == PhoneConnector.VersionMode.PINNED and (
                version.agent_id != connector.agent_id or not version.is_published):
            version = None
    connection = None
    if account_sid and auth_token:
        token = _auth_token_decrypt(auth_token)
        if token:
            connection = WebhookConnection(workspace_id=connector.workspace_id, account_sid=account_sid,
                                           auth_token=token)
    return WebhookCall(connector=connector, connection=connection, ready_version=version)


@functools.lru_cache(maxsize=64)
def _auth_token_decrypt(value: str) -> str:
    """The stored ciphertext decrypted by the field itself (raises UndecryptableSecret, as a model load would).

    Kept per ciphertext (a few per process): Fernet's check and decryption cost more than the rest of the
    row's handling, and a changed token is a new ciphertext (Fernet encrypts with a fresh IV), so it is never
    served stale. A key the process cannot decrypt with raises and is not kept.
    """
    from dialer.models import TwilioConnection

    return TwilioConnection._meta.get_field("auth_token").from_db_value(value, None, db) or ""


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


def call_session_for_handoff(*, connector: PhoneConnector, call_sid: str) -> CallSession | None:
    return CallSession.objects.filter(connector=connector, call_sid=call_sid).select_related("agent_version").first()
