"""Studio factories (agents, versions, actions, environments, connectors, call sessions)."""
import factory

from agents.models import Agent, AgentVersion, Environment, EnvironmentSecret, EnvironmentVariable, HandoverAction
from connectors.models import PhoneConnector
from tests.factories import WorkspaceFactory


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.Sequence(lambda n: f"agent-{n}")

    @factory.post_generation
    def with_draft(self, create, extracted, **kwargs):
        if create and extracted is not False:
            AgentVersion.objects.create(agent=self, state=AgentVersion.State.DRAFT, caller_name=self.name,
                                        greeting="Hello, how can I help?", instructions="Be helpful.")


class HandoverActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HandoverAction

    name = factory.Sequence(lambda n: f"transfer_{n}")
    destination = "+31201234567"
    description = "When the caller asks for a human."


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("workspace", "kind")

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = Environment.Kind.PRODUCTION


class EnvironmentSecretFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnvironmentSecret

    environment = factory.SubFactory(EnvironmentFactory)
    name = factory.Sequence(lambda n: f"SECRET_{n}")
    value = "s3cr3t-value-1234"


class EnvironmentVariableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnvironmentVariable

    environment = factory.SubFactory(EnvironmentFactory)
    name = factory.Sequence(lambda n: f"VAR_{n}")
    value = "value"


def draft_of(agent) -> AgentVersion:
    return AgentVersion.objects.get(agent=agent, state=AgentVersion.State.DRAFT)


def published_agent(workspace, *, versions: int = 1, **draft_fields) -> Agent:
    """An agent with `versions` published versions (greeting differs per version)."""
    from agents import services

    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    for n in range(1, versions + 1):
        services.agent_draft_update(draft=draft, greeting=f"Hello from v{n}", **draft_fields)
        services.agent_publish(agent=agent)
        draft.refresh_from_db()
    return agent


class PhoneConnectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneConnector

    workspace = factory.SubFactory(WorkspaceFactory)
    agent = factory.LazyAttribute(lambda o: AgentFactory(workspace=o.workspace))
    environment = factory.LazyAttribute(lambda o: EnvironmentFactory(workspace=o.workspace))
    version_mode = PhoneConnector.VersionMode.PUBLISHED
    enabled = True


def rows_post(prefix: str, *rows: dict, initial: int = 0) -> dict:
    """A row formset's POST data (scripted answers: prefix "answers"; handover rules: "rules")."""
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "100"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data
