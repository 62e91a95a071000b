"""All writes of agents, versions, handover actions and environments (keyword-only, transactional)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from agents import hooks
from agents.models import (
    Agent,
    AgentVersion,
    ApiAction,
    AuthConnector,
    Environment,
    EnvironmentSecret,
    EnvironmentVariable,
    HandoverAction,
    ImmutableVersionError,
    TestScenario,
)
from agents.selectors import draft_get, latest_published_get
from workspaces.models import AuditEntry
from workspaces.services import audit_record


class NothingToPublish(Exception):
    """The draft is identical to the latest published version."""


# ---------------------------------------------------------------------------
# Agents and versions


@transaction.atomic
def agent_create(*, workspace, name: str, greeting: str = "", instructions: str = "") -> Agent:
    base = slugify(name)[:70] or "agent"
    slug, n = base, 1
    while Agent.objects.filter(workspace=workspace, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    agent = Agent.objects.create(workspace=workspace, name=name, slug=slug)
    AgentVersion.objects.create(agent=agent, state=AgentVersion.State.DRAFT, caller_name=name, greeting=greeting,
                                instructions=instructions)
    return agent


@transaction.atomic
def agent_rename(*, agent: Agent, name: str) -> Agent:
    agent.name = name
    agent.save(update_fields=["name", "updated_at"])
    return agent


@transaction.atomic
def agent_draft_ensure(*, agent: Agent) -> AgentVersion:
    draft = draft_get(agent=agent)
    if draft is None:
        latest = latest_published_get(agent_id=agent.pk)
        content = latest.content() if latest is not None else {"caller_name": agent.name}
        try:
            with transaction.atomic():
                draft = AgentVersion.objects.create(agent=agent, state=AgentVersion.State.DRAFT, **content)
        except IntegrityError:
            return draft_get(agent=agent)
        if latest is not None:
            _copy_actions(source=latest, target=draft, reason="draft")
            AgentVersion.objects.filter(pk=draft.pk).update(action_requirements=latest.action_requirements)
            draft.action_requirements = latest.action_requirements
    return draft


@transaction.atomic
def agent_draft_update(*, draft: AgentVersion, **fields) -> AgentVersion:
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Only the draft can be edited.")
    unknown = set(fields) - set(AgentVersion.CONTENT_FIELDS)
    if unknown:
        raise ValueError(f"Not version fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(draft, name, value)
    draft.full_clean(exclude=["agent", "published_by"])
    draft.save(update_fields=[*fields, "updated_at"])
    Agent.objects.filter(pk=draft.agent_id).update(updated_at=timezone.now())
    return draft


def _copy_actions(*, source: AgentVersion, target: AgentVersion, reason: str) -> None:
    # bulk_create: the target may be a published version being created (its save() would refuse).
    HandoverAction.objects.bulk_create(
        HandoverAction(version=target, name=a.name, **{f: getattr(a, f) for f in HandoverAction.CONTENT_FIELDS})
        for a in source.actions.all()
    )
    ApiAction.objects.bulk_create(
        ApiAction(version=target, name=a.name, **{f: getattr(a, f) for f in ApiAction.CONTENT_FIELDS})
        for a in source.api_actions.all()
    )
    for hook in hooks.version_copy_hooks:  # e.g. knowledge: snapshot on publish (agents/hooks.py)
        hook(source=source, target=target, reason=reason)


@transaction.atomic
def agent_publish(*, agent: Agent, user=None, allow_unchanged: bool = False) -> AgentVersion:
    """Copy the draft into published version n+1. The draft stays, unchanged, for further edits."""
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    draft = draft_get(agent=locked)
    if draft is None:
        raise ValidationError("This agent has no draft to publish.")
    latest = latest_published_get(agent_id=locked.pk)
    if latest is not None and not allow_unchanged:
        from agents.selectors import version_diff

        if version_diff(draft=draft, base=latest).empty:
            raise NothingToPublish(f"The draft is the same as {latest.label}: nothing to publish.")
    number = (latest.number if latest is not None else 0) + 1
    version = AgentVersion.objects.create(
        agent=locked, state=AgentVersion.State.PUBLISHED, number=number, published_at=timezone.now(),
        published_by=user if (user is not None and user.is_authenticated) else None,
        restored_from=draft.restored_from, action_requirements=draft.action_requirements, **draft.content(),
    )
    _copy_actions(source=draft, target=version, reason="publish")
    if draft.restored_from is not None:
        AgentVersion.objects.filter(pk=draft.pk).update(restored_from=None)
    locked.latest_version = version
    locked.save(update_fields=["latest_version", "updated_at"])
    agent.latest_version = version
    audit_record(workspace=locked.workspace_id, actor=user, action=AuditEntry.Action.AGENT_PUBLISHED, target=version,
                 details={"agent": locked.name, "version": version.number})
    return version


@transaction.atomic
def agent_version_restore(*, version: AgentVersion) -> AgentVersion:
    """Copy an (older) published version into the draft, replacing the draft's content and actions."""
    if not version.is_published:
        raise ValidationError("Only published versions can be restored.")
    Agent.objects.select_for_update().get(pk=version.agent_id)
    draft = agent_draft_ensure(agent=version.agent)
    for name, value in version.content().items():
        setattr(draft, name, value)
    draft.restored_from = version.number
    draft.save(update_fields=[*AgentVersion.CONTENT_FIELDS, "restored_from", "updated_at"])
    HandoverAction.objects.filter(version=draft).delete()
    ApiAction.objects.filter(version=draft).delete()
    _copy_actions(source=version, target=draft, reason="restore")
    AgentVersion.objects.filter(pk=draft.pk).update(action_requirements=version.action_requirements)
    draft.action_requirements = version.action_requirements
    return draft


@transaction.atomic
def handover_action_create(*, draft: AgentVersion, name: str, destination: str, description: str = "",
                           type: str = HandoverAction.Type.PHONE, kind: str = HandoverAction.Kind.COLD,
                           more_destinations: list | None = None, target_agent=None,
                           target_version_number: int | None = None, target_environment=None,
                           hold_message: str = "", reps: list | None = None) -> HandoverAction:
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Actions can only be added to the draft.")
    action = HandoverAction(version=draft, type=type, name=name, destination=destination, description=description,
                            kind=kind, more_destinations=list(more_destinations or []), target_agent=target_agent,
                            target_version_number=target_version_number, target_environment=target_environment,
                            hold_message=hold_message, reps=list(reps or []))
    action.full_clean()
    action.save()
    return action


@transaction.atomic
def handover_action_update(*, action: HandoverAction, name: str, destination: str, description: str = "",
                           kind: str | None = None, more_destinations: list | None = None,
                           type: str | None = None, hold_message: str | None = None, reps: list | None = None,
                           **targets) -> HandoverAction:
    """`targets`: target_agent, target_version_number, target_environment (another-agent handovers);
    `reps`: the team a dialer-reps handover rings (user ids; empty: every online rep)."""
    action.name, action.destination, action.description = name, destination, description
    if hold_message is not None:
        action.hold_message = hold_message
    for field_name in ("target_agent", "target_version_number", "target_environment"):
        if field_name in targets:
            setattr(action, field_name, targets[field_name])
    if kind is not None:
        action.kind = kind
    if more_destinations is not None:
        action.more_destinations = list(more_destinations)
    if type is not None:
        action.type = type
    if reps is not None:
        action.reps = list(reps)
    action.full_clean()
    action.save(update_fields=["name", "destination", "description", "kind", "more_destinations", "type",
                               "target_agent", "target_version_number", "target_environment", "hold_message",
                               "reps"])
    return action


@transaction.atomic
def handover_action_delete(*, action: HandoverAction) -> None:
    action.delete()


def _action_name_taken(*, version: AgentVersion, name: str, exclude: ApiAction | None = None) -> bool:
    """Handover and API actions share one namespace per version (they are all tools the model sees)."""
    api = ApiAction.objects.filter(version=version, name=name)
    if exclude is not None:
        api = api.exclude(pk=exclude.pk)
    return api.exists() or HandoverAction.objects.filter(version=version, name=name).exists()


@transaction.atomic
def api_action_save(*, draft: AgentVersion, name: str, action: ApiAction | None = None, **fields) -> ApiAction:
    """Create (action=None) or change an API action of the draft; `fields` are ApiAction.CONTENT_FIELDS."""
    if draft.state != AgentVersion.State.DRAFT:
        raise ImmutableVersionError("Actions can only be added to the draft.")
    unknown = set(fields) - set(ApiAction.CONTENT_FIELDS)
    if unknown:
        raise ValueError(f"Not API action fields: {sorted(unknown)}")
    if _action_name_taken(version=draft, name=name, exclude=action):
        raise ValidationError({"name": "This agent already has an action with this name."})
    if action is None:
        action = ApiAction(version=draft)
    action.name = name
    for key, value in fields.items():
        setattr(action, key, value)
    action.full_clean(exclude=["version"], validate_unique=False)
    action.save()
    _requirements_refresh(version=draft)
    return action


@transaction.atomic
def api_action_delete(*, action: ApiAction) -> None:
    action.delete()
    _requirements_refresh(version=action.version)


def _requirements_refresh(*, version: AgentVersion) -> None:
    from agents.action_requests import action_requirements

    needs = action_requirements(list(ApiAction.objects.filter(version=version)))
    AgentVersion.objects.filter(pk=version.pk, state=AgentVersion.State.DRAFT).update(action_requirements=needs)
    version.action_requirements = needs


# ---------------------------------------------------------------------------
# Environments


def environments_ensure(*, workspace) -> list[Environment]:
    """Development, Staging and Production for the workspace, created on first use."""
    existing = {e.kind: e for e in Environment.objects.filter(workspace=workspace)}
    for kind in Environment.Kind.values:
        if kind not in existing:
            try:
                with transaction.atomic():
                    existing[kind] = Environment.objects.create(workspace=workspace, kind=kind)
            except IntegrityError:
                existing[kind] = Environment.objects.get(workspace=workspace, kind=kind)
    return [existing[k] for k in Environment.Kind.values]


@transaction.atomic
def environment_secret_set(*, environment: Environment, name: str, value: str, actor=None) -> EnvironmentSecret:
    secret, created = EnvironmentSecret.objects.select_for_update().get_or_create(
        environment=environment, name=name, defaults={"value": value}
    )
    if not created:
        secret.value = value
        secret.save(update_fields=["value", "updated_at"])
    # By name only: never the value (nor its mask).
    audit_record(workspace=environment.workspace_id, actor=actor, action=AuditEntry.Action.SECRET_SET,
                 details={"name": name, "environment": environment.kind, "created": created})
    return secret


@transaction.atomic
def environment_secret_delete(*, secret: EnvironmentSecret, actor=None) -> None:
    environment = secret.environment
    audit_record(workspace=environment.workspace_id, actor=actor, action=AuditEntry.Action.SECRET_DELETED,
                 details={"name": secret.name, "environment": environment.kind})
    secret.delete()


@transaction.atomic
def environment_recording_set(*, environment: Environment, recording_enabled: bool,
                              recording_retention_days: int) -> Environment:
    environment.recording_enabled = recording_enabled
    environment.recording_retention_days = recording_retention_days
    environment.full_clean(exclude=["workspace", "kind"])
    environment.save(update_fields=["recording_enabled", "recording_retention_days"])
    return environment


@transaction.atomic
def environment_variable_set(*, environment: Environment, name: str, value: str) -> EnvironmentVariable:
    variable, created = EnvironmentVariable.objects.select_for_update().get_or_create(
        environment=environment, name=name, defaults={"value": value}
    )
    if not created:
        variable.value = value
        variable.save(update_fields=["value", "updated_at"])
    return variable


@transaction.atomic
def environment_variable_delete(*, variable: EnvironmentVariable) -> None:
    variable.delete()


@transaction.atomic
def auth_connector_save(*, environment: Environment, name: str, kind: str, config: dict, secret: str = "",
                        instance: AuthConnector | None = None, actor=None) -> AuthConnector:
    """Create, or update `instance`. An empty `secret` on update keeps the stored one (write-only field)."""
    allowed = AuthConnector.CONFIG_KEYS.get(kind, [])
    config = {k: v for k, v in (config or {}).items() if k in allowed and v}
    if config.get("token_url"):  # a URL we connect to: the outbound guard's check, whoever saves it
        from workspaces import outbound

        reason = outbound.url_refusal(config["token_url"])
        if reason:
            raise ValidationError({"token_url": reason})
    if instance is None:
        if not secret:
            raise ValidationError({"secret": "Enter the secret."})
        instance = AuthConnector(environment=environment)
    instance.name, instance.kind, instance.config = name, kind, config
    if secret:
        instance.secret = secret
    instance.full_clean(exclude=["environment"])
    instance.save()
    audit_record(workspace=environment.workspace_id, actor=actor, action=AuditEntry.Action.AUTH_CONNECTOR_SAVED,
                 target=instance, details={"name": name, "kind": kind, "environment": environment.kind,
                                           "rotated": bool(secret)})
    return instance


@transaction.atomic
def auth_connector_delete(*, auth_connector: AuthConnector) -> None:
    auth_connector.delete()


# ---------------------------------------------------------------------------
# Test scenarios (the runs are started and executed by `calls.services.test_runs`)


class ScenarioNameTaken(Exception):
    pass


@transaction.atomic
def test_scenario_save(*, agent: Agent, name: str, caller_turns: list[str], expectations: list[dict],
                       scenario: TestScenario | None = None) -> TestScenario:
    """Create (scenario=None) or change a scenario; names are unique per agent."""
    clash = TestScenario.objects.filter(agent=agent, name=name)
    if scenario is not None:
        clash = clash.exclude(pk=scenario.pk)
    if clash.exists():
        raise ScenarioNameTaken(f"This agent already has a scenario named {name}.")
    if scenario is None:
        scenario = TestScenario(agent=agent)
    scenario.name, scenario.caller_turns, scenario.expectations = name, caller_turns, expectations
    scenario.save()
    return scenario


@transaction.atomic
def test_scenario_delete(*, scenario: TestScenario) -> None:
    scenario.delete()
