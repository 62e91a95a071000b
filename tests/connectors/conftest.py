import pytest

from tests.agents.factories import (
    EnvironmentSecretFactory,
    EnvironmentVariableFactory,
    PhoneConnectorFactory,
    published_agent,
)

from .helpers import connection_for


# A ready connector (published agent whose version needs a secret and a variable the environment has),
# shared by the incoming-webhook tests.
@pytest.fixture
def connection(workspace):
    return connection_for(workspace)


@pytest.fixture
def agent(workspace):
    return published_agent(workspace, versions=2, secrets=["API_KEY"], variables=["COMPANY"])


@pytest.fixture
def connector(workspace, connection, agent):
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    EnvironmentSecretFactory(environment=connector.environment, name="API_KEY")
    EnvironmentVariableFactory(environment=connector.environment, name="COMPANY")
    return connector
