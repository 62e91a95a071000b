"""Reads for agents, versions and environments."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import CharField, Max, Prefetch, Value

from agents import catalogue, options
from agents.models import (
    Agent,
    AgentVersion,
    ApiAction,
    AuthConnector,
    Environment,
    EnvironmentSecret,
    EnvironmentVariable,
    HandoverAction,
)


def agents_list(*, workspace):
    return (
        Agent.objects.filter(workspace=workspace)
        .annotate(latest_number=Max("versions__number"))
        .order_by("name")
    )


def agent_get(*, workspace, agent_id: int) -> Agent | None:
    return Agent.objects.select_related("workspace").filter(workspace=workspace, pk=agent_id).first()


def draft_get(*, agent: Agent) -> AgentVersion | None:
    return AgentVersion.objects.filter(agent=agent, state=AgentVersion.State.DRAFT).first()


def versions_list(*, agent: Agent):
    return (
        AgentVersion.objects.filter(agent=agent, state=AgentVersion.State.PUBLISHED)
        .select_related("published_by")
        .order_by("-number")
    )


def version_get(*, agent: Agent, version_id: int) -> AgentVersion | None:
    return (
        AgentVersion.objects.filter(agent=agent, pk=version_id)
        .select_related("agent", "published_by")
        .prefetch_related(Prefetch("actions", queryset=HandoverAction.objects.order_by("name")),
                          Prefetch("api_actions", queryset=ApiAction.objects.order_by("name")))
        .first()
    )


def version_option_groups(*, version: AgentVersion) -> list[options.ShownGroup]:
    """Every option group of the version with each field's value in words (the version page)."""
    return options.version_groups(version)


def latest_published_get(*, agent_id: int) -> AgentVersion | None:
    return (
        AgentVersion.objects.filter(agent_id=agent_id, state=AgentVersion.State.PUBLISHED)
        .select_related("agent")
        .order_by("-number")
        .first()
    )


def published_versions_for_workspace(*, workspace):
    return (
        AgentVersion.objects.filter(agent__workspace=workspace, state=AgentVersion.State.PUBLISHED)
        .select_related("agent")
        .order_by("agent__name", "-number")
    )


def actions_list(*, version: AgentVersion):
    return HandoverAction.objects.filter(version=version).select_related("target_agent").order_by("name")


def api_actions_list(*, version: AgentVersion):
    return ApiAction.objects.filter(version=version).order_by("name")


# ---------------------------------------------------------------------------
# Environments


def environments_list(*, workspace):
    return Environment.objects.filter(workspace=workspace).order_by("id")


def environment_get(*, workspace, kind: str) -> Environment | None:
    return Environment.objects.filter(workspace=workspace, kind=kind).first()


def environment_secrets(*, environment: Environment):
    return EnvironmentSecret.objects.filter(environment=environment).order_by("name")


def environment_variables(*, environment: Environment):
    return EnvironmentVariable.objects.filter(environment=environment).order_by("name")


def environment_auth_connectors(*, environment: Environment):
    return AuthConnector.objects.filter(environment=environment).order_by("name")


def auth_connector_names(*, workspace) -> list[str]:
    """Names of the auth connectors in any of the workspace's environments (offered to API actions)."""
    return list(AuthConnector.objects.filter(environment__workspace=workspace).order_by("name")
                .values_list("name", flat=True).distinct())


def action_environment_values(*, environment: Environment, auth_connector: str = "") -> dict:
    """What one API action run needs from an environment (Studio's Try): variables, secret values (to redact
    them), and the named auth connector. Decrypted values live only for the request."""
    from agents.action_requests import AuthSpec

    connectors = AuthConnector.objects.filter(environment=environment, name=auth_connector) if auth_connector \
        else AuthConnector.objects.none()
    return {
        "variables": {v.name: v.value for v in EnvironmentVariable.objects.filter(environment=environment)},
        "secrets": {s.name: s.value for s in EnvironmentSecret.objects.filter(environment=environment)},
        "auth_connectors": {c.name: AuthSpec.from_model(c) for c in connectors},
    }


@dataclass(frozen=True)
class Completeness:
    missing_secrets: list[str] = field(default_factory=list)
    missing_variables: list[str] = field(default_factory=list)
    missing_auth_connectors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_secrets and not self.missing_variables and not self.missing_auth_connectors

    @property
    def missing(self) -> list[str]:
        return ([f"secret {n}" for n in self.missing_secrets] + [f"variable {n}" for n in self.missing_variables]
                + [f"auth connector {n}" for n in self.missing_auth_connectors])

    def describe(self) -> str:
        parts = []
        if self.missing_secrets:
            parts.append("secrets: " + ", ".join(self.missing_secrets))
        if self.missing_variables:
            parts.append("variables: " + ", ".join(self.missing_variables))
        if self.missing_auth_connectors:
            parts.append("auth connectors: " + ", ".join(self.missing_auth_connectors))
        return "; ".join(parts)


def _names_present(model, environment_id, names, tag: str, *, filled: str = ""):
    """(tag, name) of the environment's entries of `model` among `names` (with a non-empty `filled` field)."""
    qs = model.objects.filter(environment_id=environment_id, name__in=names)
    if filled:
        qs = qs.exclude(**{filled: ""})
    return qs.annotate(tag=Value(tag, output_field=CharField())).order_by().values_list("tag", "name")


def environment_completeness(*, version: AgentVersion | None, environment: Environment | None = None,
                             environment_id: int | None = None) -> Completeness:
    """Which of the version's required secret/variable/auth connector names the environment lacks (one query
    at most). The API actions' needs come from the version row (`action_requirements`)."""
    if environment_id is None:
        environment_id = environment.pk
    if version is None:
        return Completeness()
    needs = version.action_requirements if isinstance(version.action_requirements, dict) else {}
    # Names are strings; a version edited by hand (admin, shell) may hold others: compare them as text.
    needed_secrets = [str(n) for n in (version.secrets or []) if n]
    # The cascaded provider's vendors need their keys whether or not the version lists them.
    needed_secrets += [n for n in catalogue.cascaded_secrets(
        provider=version.provider, stt_vendor=version.stt_vendor, chat_vendor=version.chat_vendor,
        tts_vendor=version.tts_vendor) if n not in needed_secrets]
    needed_variables = list(dict.fromkeys([str(n) for n in (version.variables or []) if n]
                                          + [str(n) for n in (needs.get("variables") or []) if n]))
    needed_auth = [str(n) for n in (needs.get("auth_connectors") or []) if n]
    if not needed_secrets and not needed_variables and not needed_auth:
        return Completeness()
    # One round trip: the names present, tagged by kind.
    rows = list(_names_present(EnvironmentSecret, environment_id, needed_secrets, "s", filled="value").union(
        _names_present(EnvironmentVariable, environment_id, needed_variables, "v"),
        _names_present(AuthConnector, environment_id, needed_auth, "a", filled="secret"), all=True))
    have = {kind: {name for k, name in rows if k == kind} for kind in ("s", "v", "a")}
    return Completeness(
        missing_secrets=sorted(set(needed_secrets) - have["s"]),
        missing_variables=sorted(set(needed_variables) - have["v"]),
        missing_auth_connectors=sorted(set(needed_auth) - have["a"]),
    )


# ---------------------------------------------------------------------------
# Diff shown before publishing


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: object
    new: object

    @property
    def old_text(self) -> str:
        return value_text(self.field, self.old)

    @property
    def new_text(self) -> str:
        return value_text(self.field, self.new)


# A field's value in words: declared with the option groups (agents.options), shared with the version page.
value_text = options.value_text


@dataclass(frozen=True)
class ActionChange:
    name: str
    change: str  # added | removed | changed
    old: dict | None
    new: dict | None


@dataclass(frozen=True)
class VersionDiff:
    base: AgentVersion | None
    fields: list[FieldChange]
    actions: list[ActionChange]

    @property
    def empty(self) -> bool:
        return not self.fields and not self.actions


def version_diff(*, draft: AgentVersion, base: AgentVersion | None) -> VersionDiff:
    """What publishing `draft` would change compared with `base` (the latest published version, or nothing)."""
    fields = []
    for name in options.content_fields():  # every field of every option group, in declaration order
        new = getattr(draft, name)
        old = getattr(base, name) if base is not None else None
        if base is None and new in ("", [], None, False):
            continue
        if old != new:
            fields.append(FieldChange(name, options.label(name), old, new))
    old_actions = ({a.name: a.content() for a in [*base.actions.all(), *base.api_actions.all()]}
                   if base is not None else {})
    new_actions = {a.name: a.content() for a in [*draft.actions.all(), *draft.api_actions.all()]}
    actions = []
    for name in sorted(set(old_actions) | set(new_actions)):
        old, new = old_actions.get(name), new_actions.get(name)
        if old is None:
            actions.append(ActionChange(name, "added", None, new))
        elif new is None:
            actions.append(ActionChange(name, "removed", old, None))
        elif old != new:
            actions.append(ActionChange(name, "changed", old, new))
    from agents import hooks

    for hook in hooks.version_diff_hooks:  # e.g. knowledge bases added, removed or edited (agents/hooks.py)
        actions.extend(hook(draft=draft, base=base))
    return VersionDiff(base=base, fields=fields, actions=actions)


# ---------------------------------------------------------------------------
# Test suites


def test_scenarios_list(*, agent):
    from agents.models import TestScenario

    return list(TestScenario.objects.filter(agent=agent).order_by("name"))


def test_scenario_get(*, agent, scenario_id: int):
    from agents.models import TestScenario

    return TestScenario.objects.filter(agent=agent, pk=scenario_id).first()


def test_runs_recent(*, agent, limit: int = 10):
    from agents.models import TestRun

    return list(TestRun.objects.filter(agent=agent).select_related("environment", "created_by")[:limit])


def test_run_get(*, agent, run_id: int):
    from agents.models import TestRun

    return TestRun.objects.filter(agent=agent, pk=run_id).select_related("environment").first()


def test_run_last(*, agent, version):
    """The newest finished run of `version`, or None."""
    from agents.models import TestRun

    if version is None:
        return None
    return (TestRun.objects.filter(agent=agent, version=version, status=TestRun.Status.DONE)
            .order_by("-created_at", "-id").first())


def test_run_compare(*, draft_run, published_run) -> list[dict]:
    """Scenario by scenario, where the draft's last run and the published version's last run differ."""
    if draft_run is None or published_run is None:
        return []
    before = {r.scenario_name: r.passed for r in published_run.results.all()}
    changes = []
    for result in draft_run.results.all():
        was = before.get(result.scenario_name)
        if was is not None and was != result.passed:
            changes.append({"scenario": result.scenario_name, "now": result.passed, "before": was})
        elif was is None:
            changes.append({"scenario": result.scenario_name, "now": result.passed, "before": None})
    return changes
