"""Reads for agents, versions and environments."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import CharField, Max, Prefetch, Value

from agents import catalogue
from agents.models import (
    Agent,
    AgentVersion,
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
        .prefetch_related(Prefetch("actions", queryset=HandoverAction.objects.order_by("name")))
        .first()
    )


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
    return HandoverAction.objects.filter(version=version).order_by("name")


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


@dataclass(frozen=True)
class Completeness:
    missing_secrets: list[str] = field(default_factory=list)
    missing_variables: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_secrets and not self.missing_variables

    @property
    def missing(self) -> list[str]:
        return [f"secret {n}" for n in self.missing_secrets] + [f"variable {n}" for n in self.missing_variables]

    def describe(self) -> str:
        parts = []
        if self.missing_secrets:
            parts.append("secrets: " + ", ".join(self.missing_secrets))
        if self.missing_variables:
            parts.append("variables: " + ", ".join(self.missing_variables))
        return "; ".join(parts)


def environment_completeness(*, version: AgentVersion | None, environment: Environment | None = None,
                             environment_id: int | None = None) -> Completeness:
    """Which of the version's required secret/variable names the environment lacks (one query at most)."""
    if environment_id is None:
        environment_id = environment.pk
    if version is None:
        return Completeness()
    # Names are strings; a version edited by hand (admin, shell) may hold others: compare them as text.
    needed_secrets = [str(n) for n in (version.secrets or []) if n]
    # The cascaded provider's vendors need their keys whether or not the version lists them.
    needed_secrets += [n for n in catalogue.cascaded_secrets(
        provider=version.provider, stt_vendor=version.stt_vendor, chat_vendor=version.chat_vendor,
        tts_vendor=version.tts_vendor) if n not in needed_secrets]
    needed_variables = [str(n) for n in (version.variables or []) if n]
    if not needed_secrets and not needed_variables:
        return Completeness()
    # One round trip: the names present, tagged by kind.
    secrets_qs = (
        EnvironmentSecret.objects.filter(environment_id=environment_id, name__in=needed_secrets)
        .exclude(value="")
        .annotate(kind=Value("s", output_field=CharField()))
        .order_by()
        .values_list("kind", "name")
    )
    variables_qs = (
        EnvironmentVariable.objects.filter(environment_id=environment_id, name__in=needed_variables)
        .annotate(kind=Value("v", output_field=CharField()))
        .order_by()
        .values_list("kind", "name")
    )
    rows = list(secrets_qs.union(variables_qs, all=True))
    have_secrets = {name for kind, name in rows if kind == "s"}
    have_variables = {name for kind, name in rows if kind == "v"}
    return Completeness(
        missing_secrets=sorted(set(needed_secrets) - have_secrets),
        missing_variables=sorted(set(needed_variables) - have_variables),
    )


# ---------------------------------------------------------------------------
# Diff shown before publishing


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: object
    new: object


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
    for name in AgentVersion.CONTENT_FIELDS:
        new = getattr(draft, name)
        old = getattr(base, name) if base is not None else None
        if base is None and new in ("", [], None, False):
            continue
        if old != new:
            label = str(AgentVersion._meta.get_field(name).verbose_name)
            fields.append(FieldChange(name, label[:1].upper() + label[1:], old, new))
    old_actions = {a.name: a.content() for a in base.actions.all()} if base is not None else {}
    new_actions = {a.name: a.content() for a in draft.actions.all()}
    actions = []
    for name in sorted(set(old_actions) | set(new_actions)):
        old, new = old_actions.get(name), new_actions.get(name)
        if old is None:
            actions.append(ActionChange(name, "added", None, new))
        elif new is None:
            actions.append(ActionChange(name, "removed", old, None))
        elif old != new:
            actions.append(ActionChange(name, "changed", old, new))
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
