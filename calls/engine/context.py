"""`CallContext`: everything a live call (or a Studio test chat) needs, loaded once when it is admitted.

The engines and providers only ever see this object: no database access per audio frame or token.
Secrets live in `secrets` (and `creds`), both hidden from `repr`, so a logged context leaks nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agents.action_requests import ApiActionSpec, AuthSpec
from knowledge.selectors import KnowledgeScope, version_knowledge_scope
from telephony.public_urls import absolute_url

FALLBACK_VARIABLE = "HANDOVER_FALLBACK"  # environment variable: "hangup" (default), "agent", or an action name


@dataclass(frozen=True)
class HandoverActionSpec:
    name: str
    destination: str
    description: str = ""
    kind: str = "cold"  # agents.HandoverAction.Kind: "cold" (calls.services.handovers), "warm" (.transfers)
    more_destinations: tuple = ()  # warm: tried in order after `destination`
    target: tuple = ()  # another agent: (agent id, version number or None, environment id or None)

    @property
    def destinations(self) -> tuple:
        return (self.destination, *self.more_destinations)


@dataclass(frozen=True)
class CallContext:
    transport: str  # "media_streams" | "conversation_relay" | "text"
    provider: str  # "scripted" | "openai_realtime" | "openai_chat"
    agent_name: str = ""
    greeting: str = ""
    instructions: str = ""
    language: str = "en-US"
    voice: str = ""
    # ConversationRelay: what caller input may interrupt replies / the greeting ("" = Twilio's default, any).
    relay_interruptible: str = ""
    relay_welcome_greeting_interruptible: str = ""
    scripted_answers: tuple = ()
    handover_rules: tuple = ()
    actions: tuple[HandoverActionSpec, ...] = ()
    api_actions: tuple[ApiActionSpec, ...] = ()
    auth_connectors: dict = field(default_factory=dict, repr=False)  # name → AuthSpec (holds its secret)
    # The cascaded provider's stages: stt_vendor, stt_model, chat_vendor, chat_model, tts_vendor, tts_model, hints.
    speech: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict, repr=False)
    fallback: str = "hangup"
    # Live calls only (empty in a Studio test chat).
    call_session_id: int | None = None
    call_sid: str = ""
    account_sid: str = ""
    workspace_id: int | None = None
    connector_identifier: str = ""
    creds: object | None = field(default=None, repr=False)
    auth_token: str = field(default="", repr=False)
    test_mode: bool = False
    # Calls in Studio: record the call (the environment's setting) and what the live view shows about it.
    recording_enabled: bool = False
    monitor: dict = field(default_factory=dict)
    # Calls the agent places (calls.services.outbound): the greeting waits until the callee has spoken.
    direction: str = "inbound"
    greet_after_callee: bool = False
    # Where Twilio posts the recording's status (empty: the connector's recording-status URL).
    recording_status_url: str = ""
    # The knowledge it answers from: a published version's snapshots, a draft's live knowledge bases (ids only).
    knowledge: KnowledgeScope = field(default_factory=KnowledgeScope)
    # A call another agent handed over (calls.services.transfers.agent_handoff): the conversation so far as
    # ((role, text), ...) with role "caller" / "agent", and who had it.
    history: tuple = ()
    handed_over_from: str = ""

    @property
    def modality(self) -> str:
        """What the provider exchanges: μ-law audio (Media Streams) or text (ConversationRelay, test chat)."""
        return "audio" if self.transport == "media_streams" else "text"

    def action(self, name: str) -> HandoverActionSpec | None:
        for a in self.actions:
            if a.name == name:
                return a
        return None

    def fallback_action(self) -> HandoverActionSpec | None:
        """The handover action HANDOVER_FALLBACK names ("name" or "action:name"), or None (hang-up, agent)."""
        return self.action(self.fallback) or self.action(self.fallback.removeprefix("action:"))

    def api_action(self, name: str) -> ApiActionSpec | None:
        for a in self.api_actions:
            if a.name == name:
                return a
        return None

    def setting(self, name: str, default: str = "") -> str:
        """A provider setting: the environment's secret of that name, else its variable, else `default`."""
        value = self.secrets.get(name) or self.variables.get(name)
        return value if value else default

    def public_url(self, path: str) -> str:
        return absolute_url(path)

    def dial_result_url(self, handover_id: int) -> str:
        base = (f"/v1/agents/{self.connector_identifier}" if self.connector_identifier
                else f"/v1/calls/outbound/{self.call_session_id}")  # a placed call: its own callbacks
        return self.public_url(f"{base}/dial-result?handover={handover_id}")


def _version_fields(version) -> dict:
    return dict(
        provider=version.provider,
        agent_name=version.caller_name or version.agent.name,
        greeting=version.greeting,
        instructions=version.instructions,
        language=version.language or "en-US",
        voice=version.voice,
        relay_interruptible=version.relay_interruptible,
        relay_welcome_greeting_interruptible=version.relay_welcome_greeting_interruptible,
        scripted_answers=tuple(version.scripted_answers or ()),
        handover_rules=tuple(version.handover_rules or ()),
        actions=tuple(HandoverActionSpec(a.name, a.destination, a.description, a.kind, tuple(a.more_destinations or ()),
                                         (a.target_agent_id, a.target_version_number, a.target_environment_id)
                                         if a.kind == "agent" else ())
                      for a in version.actions.all()),
        api_actions=tuple(ApiActionSpec.from_model(a) for a in version.api_actions.all()),
        speech={**{name: getattr(version, name, "") or "" for name in (*version.CASCADED_FIELDS, *version.CHAT_FIELDS)},
                "hints": tuple(version.relay_hints or ())},
        knowledge=version_knowledge_scope(version=version),
    )


def _environment_values(environment) -> tuple[dict, dict]:
    if environment is None:
        return {}, {}
    secrets = {s.name: s.value for s in environment.secrets.all()}
    variables = {v.name: v.value for v in environment.variables.all()}
    return secrets, variables


def _auth_connectors(version, environment) -> dict:
    """The environment's auth connectors the version's API actions name (none loaded when it has no actions)."""
    names = (version.action_requirements or {}).get("auth_connectors") if isinstance(
        version.action_requirements, dict) else None
    if environment is None or not names:
        return {}
    return {c.name: AuthSpec.from_model(c) for c in environment.auth_connectors.filter(name__in=names)}


def context_for_call_session(call_session) -> CallContext:
    """Sync (run it with `database_sync_to_async`). `call_session` comes from `stream_token_consume`."""
    from telephony.selectors import connection_get

    version = call_session.agent_version
    if version is None:
        raise LookupError("The call session has no agent version.")
    secrets, variables = _environment_values(call_session.environment)
    connection = connection_get(workspace=call_session.workspace)
    has_creds = connection is not None and connection.has_credentials
    fields = _version_fields(version)
    if call_session.direction == "outbound-api":
        from calls.services.outbound import outbound_context_fields

        fields.update(outbound_context_fields(session=call_session, version=version))
    handoffs = (call_session.metadata or {}).get("handoffs") if isinstance(call_session.metadata, dict) else None
    if handoffs:  # another agent had this call: the new one gets the conversation so far
        fields["history"] = tuple(call_session.turns.filter(role__in=("caller", "agent")).exclude(text="")
                                  .order_by("seq").values_list("role", "text"))
        fields["handed_over_from"] = str(handoffs[-1].get("from_agent") or "")
    return CallContext(
        transport=version.transport,
        secrets=secrets,
        variables=variables,
        fallback=(variables.get(FALLBACK_VARIABLE) or "hangup").strip(),
        call_session_id=call_session.pk,
        call_sid=call_session.call_sid,
        account_sid=connection.account_sid if connection else "",
        workspace_id=call_session.workspace_id,
        connector_identifier=call_session.connector.identifier if call_session.connector_id else "",
        creds=connection.credentials() if has_creds else None,
        auth_token=connection.auth_token if has_creds else "",
        recording_enabled=bool(call_session.environment and call_session.environment.recording_enabled),
        monitor=_monitor_info(call_session, version),
        auth_connectors=_auth_connectors(version, call_session.environment),
        direction=call_session.direction or "inbound",
        **fields,
    )


def _monitor_info(call_session, version) -> dict:
    """What Studio's live view shows about the call (no secrets): published with the call's events."""
    connector = call_session.connector if call_session.connector_id else None
    return {
        "id": call_session.pk,
        "call_sid": call_session.call_sid,
        "from": call_session.from_number,
        "to": call_session.to_number,
        "direction": call_session.direction or "inbound",
        "connector_id": call_session.connector_id,
        # The connector's name, else "agent · environment" (both already loaded: no extra query).
        "connector": (connector.name or f"{version.agent.name} · {call_session.environment}") if connector else "",
        "agent": version.agent.name,
        "version": version.label,
        "environment": str(call_session.environment) if call_session.environment_id else "",
        "transport": version.transport,
        "started_at": call_session.started_at.isoformat() if call_session.started_at else "",
    }


def context_for_test_chat(*, version, environment) -> CallContext:
    """A Studio test chat: same version and environment values, text transport, nothing dialled."""
    secrets, variables = _environment_values(environment)
    return CallContext(
        transport="text",
        secrets=secrets,
        variables=variables,
        fallback=(variables.get(FALLBACK_VARIABLE) or "hangup").strip(),
        workspace_id=version.agent.workspace_id,
        test_mode=True,
        auth_connectors=_auth_connectors(version, environment),
        **_version_fields(version),
    )
