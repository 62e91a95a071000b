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
    # The auth token as stored (Fernet text): what the cached fast path checks is still current.
    auth_token_stored: str = field(default="", repr=False)


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
    return WebhookCall(connector=connector, connection=connection, ready_version=version,
                       auth_token_stored=auth_token if connection is not None else "")


@functools.lru_cache(maxsize=64)
def _auth_token_decrypt(value: str) -> str:
    """The stored ciphertext decrypted by the field itself (raises UndecryptableSecret, as a model load would).

    Kept per ciphertext (a few per process): Fernet's check and decryption cost more than the rest of the
    row's handling, and a changed token is a new ciphertext (Fernet encrypts with a fresh IV), so it is never
    served stale. A key the process cannot decrypt with raises and is not kept.
    """
    from dialer.models import TwilioConnection

    return TwilioConnection._meta.get_field("auth_token").from_db_value(value, None, db) or ""


# ---------------------------------------------------------------------------
# The incoming-call webhook's read side, kept per process


@dataclass(frozen=True)
class CachedWebhookCall:
    """What `webhook_call_context` read for a connector a call can be connected to, kept between calls.

    Never trusted on its own: the fast path checks Twilio's signature with `auth_token` and then inserts the
    call session with `webhook_call_guard`, which re-checks every value here against the current rows in
    the same statement. The instances are shared between threads: read them, never change them.
    """

    connector: PhoneConnector
    version: AgentVersion
    account_sid: str
    auth_token: str = field(repr=False)
    auth_token_stored: str = field(repr=False)  # the ciphertext the guard compares


WEBHOOK_CACHE_SIZE = 1024


_webhook_calls = sql.LocalCache(maxsize=WEBHOOK_CACHE_SIZE)  # by connector identifier


def webhook_call_cached(*, identifier: str) -> CachedWebhookCall | None:
    """The kept read for this connector, or None (then the webhook reads with `webhook_call_context`)."""
    return _webhook_calls.get(identifier)


def webhook_call_remember(*, call: WebhookCall) -> CachedWebhookCall | None:
    """Keep `call` when it is the common case, and only then: an enabled connector in Published or Pinned
    mode (a published version never changes) whose version is ready, with Twilio credentials.

    Draft mode (the draft is edited in place), disabled or incomplete connectors and workspaces without
    credentials are not kept (and an earlier entry is dropped): those calls read every time, as the careful
    path needs to anyway.
    """
    connector, connection, version = call.connector, call.connection, call.ready_version
    if (connection is None or version is None or not call.auth_token_stored or not connector.enabled
            or not version.is_published or connector.version_mode not in _CACHED_MODES):
        _webhook_calls.forget(connector.identifier)
        return None
    entry = CachedWebhookCall(connector=connector, version=version, account_sid=connection.account_sid,
                              auth_token=connection.auth_token, auth_token_stored=call.auth_token_stored)
    _webhook_calls.set(connector.identifier, entry)
    return entry


def webhook_call_forget(*, identifier: str) -> None:
    """Drop the kept read (its guard failed, or Twilio signed with another token): the next call reads."""
    _webhook_calls.forget(identifier)


def webhook_call_cache_clear() -> None:
    """Forget every kept read of this process (tests; nothing else needs it, the guard catches changes)."""
    _webhook_calls.clear()


_CACHED_MODES = (PhoneConnector.VersionMode.PUBLISHED, PhoneConnector.VersionMode.PINNED)


@functools.cache
def _webhook_guard_sql(vendor: str, mode: str) -> str:
    from dialer.models import TwilioConnection

    col, table = sql.column, sql.table
    if mode == PhoneConnector.VersionMode.PINNED:
        resolves = f"{col(PhoneConnector, 'pinned_version', 'pc')} = {col(AgentVersion, 'id', 'v')}"
    elif mode == PhoneConnector.VersionMode.PUBLISHED:
        resolves = f"{col(Agent, 'latest_version', 'a')} = {col(AgentVersion, 'id', 'v')}"
    else:
        raise ValueError(f"{mode} connectors are not kept")
    complete = environment_complete_sql(vendor=vendor, version="v",
                                        environment_id=col(PhoneConnector, "environment", "pc"))
    return (
        f"EXISTS (SELECT 1 FROM {table(PhoneConnector)} pc "
        f"INNER JOIN {table(Agent)} a ON {col(Agent, 'id', 'a')} = {col(PhoneConnector, 'agent', 'pc')} "
        f"INNER JOIN {table(AgentVersion)} v ON {col(AgentVersion, 'id', 'v')} = %s "
        f"INNER JOIN {table(TwilioConnection)} c ON {col(TwilioConnection, 'workspace', 'c')} = "
        f"{col(PhoneConnector, 'workspace', 'pc')} "
        f"WHERE {col(PhoneConnector, 'id', 'pc')} = %s AND {col(PhoneConnector, 'identifier', 'pc')} = %s "
        f"AND {col(PhoneConnector, 'enabled', 'pc')} "
        f"AND {col(PhoneConnector, 'workspace', 'pc')} = %s AND {col(PhoneConnector, 'agent', 'pc')} = %s "
        f"AND {col(PhoneConnector, 'environment', 'pc')} = %s AND {col(PhoneConnector, 'version_mode', 'pc')} = %s "
        f"AND {resolves} "
        f"AND {col(AgentVersion, 'agent', 'v')} = {col(PhoneConnector, 'agent', 'pc')} "
        f"AND {col(AgentVersion, 'state', 'v')} = %s AND {col(AgentVersion, 'transport', 'v')} = %s "
        f"AND {col(AgentVersion, 'language', 'v')} = %s AND {col(AgentVersion, 'voice', 'v')} = %s "
        f"AND {complete} "
        f"AND {col(TwilioConnection, 'account_sid', 'c')} = %s AND {col(TwilioConnection, 'auth_token', 'c')} = %s)"
    )


def webhook_call_guard(*, entry: CachedWebhookCall) -> tuple[str, list]:
    """(SQL, params): true only while every row `entry` was read from still says the same.

    The connector (same id, identifier, workspace, agent, environment, mode; enabled), the version its mode
    gives now (the agent's latest published version, or the pinned one; still published, same agent and TwiML
    fields), the environment still complete for it (`environment_complete_sql`, the rule of the read), and the
    workspace's Twilio connection with the same account SID and the same stored token ciphertext. Used as the
    guard of the call session's INSERT, so a cached call costs that one statement and nothing stale is acted on.
    """
    connector, version = entry.connector, entry.version
    return _webhook_guard_sql(db.vendor, connector.version_mode), [
        version.pk, connector.pk, connector.identifier, connector.workspace_id, connector.agent_id,
        connector.environment_id, connector.version_mode, AgentVersion.State.PUBLISHED, version.transport,
        version.language, version.voice, entry.account_sid, entry.auth_token_stored,
    ]


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
