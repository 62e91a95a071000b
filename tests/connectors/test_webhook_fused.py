"""The incoming-call webhook's one-query read (`webhook_call_context`) against the ORM selectors it replaces.

The fast path must take exactly the decisions `connector_for_webhook`, `webhook_connection` and
`connector_readiness` take; these tests run on SQLite by default and on PostgreSQL in CI (the completeness
check is vendor-specific SQL).
"""
import pytest
from django.test import Client

from agents.models import AgentVersion, EnvironmentSecret
from connectors import services
from connectors.models import CallSession, PhoneConnector
from connectors.selectors import (
    connector_for_webhook,
    connector_readiness,
    webhook_call_context,
    webhook_connection,
)
from tests.agents.factories import PhoneConnectorFactory, draft_of, published_agent

from .helpers import call_params, connection_for, signed_post, twiml

pytestmark = pytest.mark.django_db


def orm_decision(identifier):
    """What the ORM selectors decide: (connector, connection, version a call would be connected to)."""
    connector = connector_for_webhook(identifier=identifier)
    if connector is None:
        return None
    version = None
    if connector.enabled:
        resolved, _, problem = connector_readiness(connector=connector)
        version = None if problem else resolved
    return connector, webhook_connection(connector=connector), version


def assert_same_decision(identifier):
    orm = orm_decision(identifier)
    call = webhook_call_context(identifier=identifier)
    if orm is None:
        assert call is None
        return call
    connector, connection, version = orm
    assert call is not None
    for name in ("pk", "workspace_id", "name", "agent_id", "environment_id", "version_mode", "pinned_version_id",
                 "identifier", "enabled"):
        assert getattr(call.connector, name) == getattr(connector, name), name
    assert call.connection == connection
    assert (call.ready_version.pk if call.ready_version else None) == (version.pk if version else None)
    if version is not None:
        for name in ("agent_id", "number", "state", "language", "voice", "transport", "label", "is_published"):
            assert getattr(call.ready_version, name) == getattr(version, name), name
    return call




def test_published_mode_gets_the_latest_published_version(connector, agent):
    call = assert_same_decision(connector.identifier)
    assert call.ready_version.number == 2 and call.connection.account_sid.startswith("AC")


def test_draft_mode_gets_the_draft(connector, agent):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    call = assert_same_decision(connector.identifier)
    assert call.ready_version.pk == draft_of(agent).pk


def test_pinned_mode_gets_the_pinned_version(connector, agent):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.PINNED,
                                                          pinned_version=agent.versions.get(number=1))
    assert assert_same_decision(connector.identifier).ready_version.number == 1


@pytest.mark.parametrize("pinned", ["none", "draft", "other_agent"])
def test_pinned_mode_without_a_usable_version_is_not_ready(connector, agent, workspace, pinned):
    version = {"none": lambda: None, "draft": lambda: draft_of(agent),
               "other_agent": lambda: published_agent(workspace).versions.get(number=1)}[pinned]()
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.PINNED,
                                                          pinned_version=version)
    assert assert_same_decision(connector.identifier).ready_version is None


def test_published_mode_without_a_published_version_is_not_ready(workspace, connection):
    connector = PhoneConnectorFactory(workspace=workspace)  # the agent was never published
    assert assert_same_decision(connector.identifier).ready_version is None


def test_draft_mode_without_a_draft_is_not_ready(connector, agent):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    draft_of(agent).delete()
    assert assert_same_decision(connector.identifier).ready_version is None


def test_disabled_connector_is_not_ready(connector):
    services.connector_disable(connector=connector)
    call = assert_same_decision(connector.identifier)
    assert call.ready_version is None and call.connector.enabled is False


@pytest.mark.parametrize("change", ["no_secret", "no_variable", "empty_secret", "other_case", "other_environment"])
def test_environment_lacking_a_name_is_not_ready(connector, workspace, change):
    if change == "no_secret":
        EnvironmentSecret.objects.filter(environment=connector.environment).delete()
    elif change == "no_variable":
        connector.environment.variables.all().delete()
    elif change == "empty_secret":  # an empty column, as the ORM's exclude(value="") sees it (not an encrypted "")
        from django.db import connection as db

        with db.cursor() as cursor:
            cursor.execute(f"UPDATE {EnvironmentSecret._meta.db_table} SET value = ''")
    elif change == "other_case":
        EnvironmentSecret.objects.filter(environment=connector.environment).update(name="api_key")
    else:
        from agents import services as env_services

        staging = {e.kind: e for e in env_services.environments_ensure(workspace=workspace)}["staging"]
        PhoneConnector.objects.filter(pk=connector.pk).update(environment=staging)
    assert assert_same_decision(connector.identifier).ready_version is None


def test_version_needing_nothing_is_ready(workspace, connection):
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    assert assert_same_decision(connector.identifier).ready_version.number == 1


def test_empty_names_are_ignored(connector, agent):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    AgentVersion.objects.filter(pk=draft_of(agent).pk).update(secrets=["", "API_KEY", ""], variables=[""])
    assert assert_same_decision(connector.identifier).ready_version.pk == draft_of(agent).pk


@pytest.mark.parametrize("secrets", [{"API_KEY": 1}, ["API_KEY", 5], [None, "API_KEY"], "API_KEY"])
def test_odd_names_are_left_to_the_orm_and_answered_the_same(connector, agent, connection, secrets):
    """Names that are not a list of strings: the one-query read cannot tell, so the webhook asks the ORM."""
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    AgentVersion.objects.filter(pk=draft_of(agent).pk).update(secrets=secrets)
    assert webhook_call_context(identifier=connector.identifier).ready_version is None
    try:
        orm_version = orm_decision(connector.identifier)[2]
    except TypeError:  # the ORM path cannot describe a non-string name: the call hears the apology
        orm_version = "error"
    response = signed_post(Client(raise_request_exception=False), connector.webhook_path, call_params(connection),
                           connection.auth_token)
    if orm_version == "error":
        assert [child.tag for child in twiml(response)] == ["Say", "Hangup"]
    elif orm_version is None:
        assert [child.tag for child in twiml(response)] == ["Say", "Hangup"]
        assert CallSession.objects.get().status == "rejected"
    else:
        assert twiml(response).find("Connect/Stream") is not None
        assert CallSession.objects.get().agent_version_id == orm_version.pk


def test_unknown_identifier_is_none(connector):
    assert assert_same_decision("no-such-connector") is None


@pytest.mark.parametrize("credentials", ["none", "no_token", "no_sid"])
def test_workspace_without_credentials_has_no_connection(workspace, credentials):
    from tests.factories import TwilioConnectionFactory

    if credentials == "no_token":
        TwilioConnectionFactory(workspace=workspace, auth_token="")
    elif credentials == "no_sid":
        TwilioConnectionFactory(workspace=workspace, account_sid="")
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    call = assert_same_decision(connector.identifier)
    assert call.connection is None


def test_the_connection_is_the_connectors_workspace(connector, other_workspace):
    other = connection_for(other_workspace)
    call = assert_same_decision(connector.identifier)
    assert call.connection.account_sid != other.account_sid
    assert call.connection.workspace_id == connector.workspace_id


@pytest.mark.parametrize("mode", ["published", "pinned", "draft"])
def test_new_call_costs_two_queries(connector, agent, connection, django_assert_num_queries, mode):
    """The fused read and the INSERT (no health check, no savepoint) for a connector not read before."""
    PhoneConnector.objects.filter(pk=connector.pk).update(
        version_mode=mode, pinned_version=agent.versions.get(number=1) if mode == "pinned" else None)
    client = Client()
    with django_assert_num_queries(2):
        response = signed_post(client, connector.webhook_path, call_params(connection), connection.auth_token)
    assert twiml(response).find("Connect/Stream") is not None
    # The retry: the existing session and a new token; in Published and Pinned mode the connector was kept from
    # the first call, so the guarded INSERT is tried first (and inserts nothing).
    with django_assert_num_queries(4 if mode == "draft" else 5):
        response = signed_post(client, connector.webhook_path, call_params(connection), connection.auth_token)
    assert twiml(response).find("Connect/Stream") is not None
    assert CallSession.objects.count() == 1


def test_call_routed_on_to_another_connector_moves_its_session(connector, agent, workspace, connection):
    """An IVR in front of several agents sends the same CallSid to a second connector."""
    second = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace, language="nl-NL"),
                                   environment=connector.environment)
    first = signed_post(Client(), connector.webhook_path, call_params(connection, FlowSid="FW" + "a" * 32),
                        connection.auth_token)
    assert twiml(first).find("Connect/Stream") is not None
    again = signed_post(Client(), second.webhook_path, call_params(connection, Digits="2"), connection.auth_token)
    stream = twiml(again).find("Connect/Stream")
    session = CallSession.objects.get()
    assert session.connector_id == second.pk and session.agent_version.agent_id == second.agent_id
    assert session.params["FlowSid"] == "FW" + "a" * 32 and session.params["Digits"] == "2"
    token = stream.find("Parameter").get("value")
    assert services.stream_token_consume(token=token).pk == session.pk


def _twiml_built_by_twilio(*, connector, version, token):
    """What connect_twiml answered before it reused a template (built with twilio's VoiceResponse each time)."""
    from twilio.twiml.voice_response import Connect, VoiceResponse

    from connectors.services import _wss_base

    response = VoiceResponse()
    if version.transport == AgentVersion.Transport.CONVERSATION_RELAY:
        connect = Connect(action=connector.handoff_url)
        kwargs = {"url": f"{_wss_base()}/v1/stream/relay"}
        if version.language:
            kwargs["language"] = version.language
        if version.voice:
            kwargs["voice"] = version.voice
        relay = connect.conversation_relay(**kwargs)
        relay.parameter(name="session", value=token)
        response.append(connect)
    else:
        stream = response.connect().stream(url=f"{_wss_base()}/v1/stream/media")
        stream.parameter(name="session", value=token)
    return str(response)


@pytest.mark.parametrize("transport,language,voice", [
    ("media_streams", "en-US", ""),
    ("conversation_relay", "nl-NL", "Polly.Lotte"),
    ("conversation_relay", "", ""),
    ("conversation_relay", "en-US", 'a "quoted" & <odd> voice'),
])
@pytest.mark.parametrize("token", ["12.nonce_-x:1abc:sig-_", 'odd & <token> "\n\r\t'])
def test_connect_twiml_is_what_twilio_builds(transport, language, voice, token, settings):
    connector = PhoneConnector(identifier="abc-DEF_123")
    version = AgentVersion(transport=transport, language=language, voice=voice)
    for base in ("https://calls.example.test", "http://127.0.0.1:8000"):
        settings.PUBLIC_BASE_URL = base
        assert services.connect_twiml(connector=connector, version=version, token=token) == \
            _twiml_built_by_twilio(connector=connector, version=version, token=token)


def test_webhook_skips_the_session_user_and_workspace_lookup(connector, connection):
    """Twilio sends no session: CurrentWorkspaceMiddleware must not touch request.user for this view."""
    from django.utils.functional import empty

    from connectors import webhooks

    assert getattr(webhooks.twilio_config, "resolves_own_workspace", False)
    response = signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    assert response.wsgi_request.workspace is None
    assert response.wsgi_request.user._wrapped is empty  # the lazy user was never resolved


def test_a_changed_auth_token_is_used_at_once(connector, connection):
    """The decrypted token is kept per ciphertext, so a new token (a new ciphertext) is never served stale."""
    assert webhook_call_context(identifier=connector.identifier).connection.auth_token == connection.auth_token
    connection.auth_token = "a-brand-new-token-0000000000000000"
    connection.save()
    assert webhook_call_context(identifier=connector.identifier).connection.auth_token == connection.auth_token
    response = signed_post(Client(), connector.webhook_path, call_params(connection), "the-old-token")
    assert response.status_code == 403
