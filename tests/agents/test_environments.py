import pytest

from agents import selectors, services
from agents.models import AuthConnector, Environment, EnvironmentSecret
from connectors import services as connector_services
from tests.agents.factories import (
    EnvironmentFactory,
    EnvironmentSecretFactory,
    EnvironmentVariableFactory,
    published_agent,
)

pytestmark = pytest.mark.django_db


def test_environments_created_on_first_use(workspace):
    envs = services.environments_ensure(workspace=workspace)
    assert [e.kind for e in envs] == ["development", "staging", "production"]
    assert services.environments_ensure(workspace=workspace) == envs
    assert Environment.objects.filter(workspace=workspace).count() == 3


def test_completeness_lists_missing_secret_and_variable_names(workspace):
    agent = published_agent(workspace, secrets=["OPENAI_API_KEY", "CRM_TOKEN"], variables=["COMPANY", "HOURS"])
    version = selectors.latest_published_get(agent_id=agent.pk)
    env = EnvironmentFactory(workspace=workspace, kind="staging")
    EnvironmentSecretFactory(environment=env, name="CRM_TOKEN")
    EnvironmentVariableFactory(environment=env, name="HOURS")
    # Another environment's values do not count.
    other_env = EnvironmentFactory(workspace=workspace, kind="production")
    EnvironmentSecretFactory(environment=other_env, name="OPENAI_API_KEY")
    result = selectors.environment_completeness(version=version, environment=env)
    assert result.missing_secrets == ["OPENAI_API_KEY"]
    assert result.missing_variables == ["COMPANY"]
    assert not result.complete
    EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY")
    EnvironmentVariableFactory(environment=env, name="COMPANY")
    assert selectors.environment_completeness(version=version, environment=env).complete


def test_completeness_of_a_hand_edited_version_with_non_string_names(workspace):
    """A version edited in the admin or a shell may hold e.g. 5: it is a name like any other, never a crash."""
    agent = published_agent(workspace, secrets=["API_KEY"])
    version = selectors.latest_published_get(agent_id=agent.pk)
    version.secrets = ["API_KEY", 5]
    env = EnvironmentFactory(workspace=workspace, kind="staging")
    EnvironmentSecretFactory(environment=env, name="API_KEY")
    result = selectors.environment_completeness(version=version, environment=env)
    assert result.missing_secrets == ["5"]
    assert result.describe() == "secrets: 5"


def test_connector_cannot_be_enabled_while_environment_lacks_names(admin_client, workspace):
    agent = published_agent(workspace, secrets=["OPENAI_API_KEY"])
    env = EnvironmentFactory(workspace=workspace, kind="production")
    connector = connector_services.connector_create(workspace=workspace, agent=agent, environment=env,
                                                    version_mode="published")
    assert not connector.enabled
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert "OPENAI_API_KEY" in page and "Cannot go live" in page
    response = admin_client.post(f"/studio/connectors/{connector.pk}/enable/", follow=True)
    connector.refresh_from_db()
    assert not connector.enabled
    assert "OPENAI_API_KEY" in response.content.decode()
    EnvironmentSecretFactory(environment=env, name="OPENAI_API_KEY")
    admin_client.post(f"/studio/connectors/{connector.pk}/enable/")
    connector.refresh_from_db()
    assert connector.enabled


def test_secret_is_encrypted_write_only_and_masked(admin_client, workspace):
    response = admin_client.post("/studio/environments/production/secrets/",
                                 {"secret-name": "OPENAI_API_KEY", "secret-value": "sk-very-secret-9876"})
    assert response.status_code == 302
    secret = EnvironmentSecret.objects.get(name="OPENAI_API_KEY")
    assert secret.value == "sk-very-secret-9876"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM agents_environmentsecret WHERE id = %s", [secret.pk])
        stored = cursor.fetchone()[0]
    assert "sk-very-secret" not in stored
    page = admin_client.get("/studio/environments/production/").content.decode()
    assert "sk-very-secret-9876" not in page and "••••9876" in page


def test_invalid_names_get_messages_next_to_the_field(admin_client, workspace):
    response = admin_client.post("/studio/environments/staging/variables/",
                                 {"variable-name": "bad name!", "variable-value": "x"})
    assert response.status_code == 400
    assert 'data-testid="error-name"' in response.content.decode()


def test_auth_connector_kinds_need_their_fields_and_keep_secret_when_blank(admin_client, workspace):
    url = "/studio/environments/development/auth-connectors/"
    response = admin_client.post(url, {"auth-name": "crm_api", "auth-kind": "oauth2_client_credentials",
                                       "auth-secret": "client-secret-1"})
    assert response.status_code == 400
    assert not AuthConnector.objects.exists()
    response = admin_client.post(url, {"auth-name": "crm_api", "auth-kind": "oauth2_client_credentials",
                                       "auth-token_url": "https://auth.example/token", "auth-client_id": "abc",
                                       "auth-secret": "client-secret-1"})
    assert response.status_code == 302
    auth = AuthConnector.objects.get()
    assert auth.config == {"token_url": "https://auth.example/token", "client_id": "abc"}
    admin_client.post(f"{url}{auth.pk}/", {"auth-name": "crm_api", "auth-kind": "bearer", "auth-secret": ""})
    auth.refresh_from_db()
    assert auth.kind == "bearer" and auth.secret == "client-secret-1" and auth.config == {}
    page = admin_client.get("/studio/environments/development/").content.decode()
    assert "client-secret-1" not in page


def test_admin_never_shows_secret_values(client, workspace, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(staff)
    env = EnvironmentFactory(workspace=workspace)
    secret = EnvironmentSecretFactory(environment=env, value="plain-admin-secret-4321")
    for url in [f"/admin/agents/environment/{env.pk}/change/", f"/admin/agents/environmentsecret/{secret.pk}/change/",
                "/admin/agents/environmentsecret/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "plain-admin-secret" not in response.content.decode()


def test_admin_published_version_read_only(client, workspace, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(staff)
    agent = published_agent(workspace)
    v1 = agent.versions.get(number=1)
    client.post(f"/admin/agents/agentversion/{v1.pk}/change/", {"greeting": "tampered"})
    v1.refresh_from_db()
    assert v1.greeting == "Hello from v1"
    page = client.get(f"/admin/agents/agentversion/{v1.pk}/change/").content.decode()
    assert 'name="greeting"' not in page
