"""Studio's incoming-call webhook (`connectors.webhooks.twilio_config`): every change made between two calls is
honoured by the very next call.

One path: each request reads the connector (with its agent's latest version and its workspace's Twilio
account SID and auth token, one query), checks the signature, resolves the version and the environment's
names, and inserts the call session. The answers are compared with what twilio's `VoiceResponse` builds.
Query bounds are measured on the current code; the session's INSERT sits in a savepoint because pytest-django
runs each test inside a transaction (the same count on SQLite and PostgreSQL).
"""
import pytest
from django.db import DatabaseError
from django.test import Client
from twilio.twiml.voice_response import Connect, VoiceResponse

from agents import services as agent_services
from agents.models import AgentVersion, EnvironmentSecret, EnvironmentVariable
from calls.models import CallSession
from connectors import selectors, services
from connectors.models import PhoneConnector
from telephony.models import TwilioConnection
from tests.agents.factories import PhoneConnectorFactory, draft_of, published_agent

from .helpers import call_params, signed_get, signed_post, twiml

pytestmark = pytest.mark.django_db

APOLOGY_TAGS = ["Say", "Hangup"]

# The connector (+ latest version, account SID, auth token), the environment's names, SAVEPOINT, INSERT, the
# environment's webhook endpoints (none here), RELEASE.
NEW_CALL_QUERIES = 6
# Draft or Pinned mode: + the draft / the pinned version.
NEW_CALL_QUERIES_OTHER_MODES = 7
# Refused before anything is written (bad signature, another account, unknown connector): the connector alone.
REFUSED_QUERIES = 1
# A retried CallSid: + the INSERT's rollback to the savepoint, the stored session, its new stream token.
RETRY_QUERIES = 8
# A call that cannot be connected: the connector, the names (when there is a version), the INSERT in its
# savepoint, the connector's alert.
APOLOGY_QUERIES = 6


def sid(n: int) -> str:
    return f"CA{n:032x}"


def call(connector, connection, n, *, token=None, send=signed_post, signature=None, **params):
    return send(Client(), connector.webhook_path, call_params(connection, CallSid=sid(n), **params),
                token or connection.auth_token, signature=signature)


def twiml_built_by_twilio(*, connector, version, token) -> str:
    """The answer, built here with twilio's VoiceResponse from the documented TwiML nouns."""
    response = VoiceResponse()
    if version.transport == AgentVersion.Transport.CONVERSATION_RELAY:
        connect = Connect(action=f"https://calls.example.test/v1/agents/{connector.identifier}/handover")
        kwargs = {"url": "wss://calls.example.test/v1/stream/relay"}
        if version.language:
            kwargs["language"] = version.language
        if version.voice:
            kwargs["voice"] = version.voice
        connect.conversation_relay(**kwargs).parameter(name="session", value=token)
        response.append(connect)
    else:
        response.connect().stream(url="wss://calls.example.test/v1/stream/media").parameter(name="session",
                                                                                         value=token)
    return str(response)


def session_token(response) -> str:
    root = twiml(response)
    parameter = root.find("Connect/Stream/Parameter")
    if parameter is None:
        parameter = root.find("Connect/ConversationRelay/Parameter")
    assert parameter is not None and parameter.get("name") == "session", response.content
    return parameter.get("value")


def assert_connected(response, connector, *, call_sid, number):
    """Connected to version `number`: the answer is what VoiceResponse builds for the session recorded."""
    assert response.status_code == 200, response.content
    session = CallSession.objects.select_related("agent_version").get(call_sid=call_sid)
    assert session.agent_version.number == number and session.status == "ringing" and not session.rejected_reason
    assert session.connector_id == connector.pk and session.environment_id == connector.environment_id
    token = session_token(response)
    assert response.content.decode() == twiml_built_by_twilio(connector=connector, version=session.agent_version,
                                                              token=token)
    assert services.stream_token_consume(token=token).pk == session.pk
    return session


def assert_apology(response, *, call_sid, reason):
    """The caller hears the apology; the session is recorded as rejected and the connector shows why."""
    assert response.status_code == 200
    assert [child.tag for child in twiml(response)] == APOLOGY_TAGS
    assert response.content.decode() == services.apology_twiml()
    session = CallSession.objects.get(call_sid=call_sid)
    assert session.status == "rejected" and session.agent_version is None and session.stream_token_nonce == ""
    assert reason in session.rejected_reason
    connector = PhoneConnector.objects.get(pk=session.connector_id)
    assert call_sid in connector.alert_text and reason in connector.alert_text
    return session


def assert_refused(response, status, *, call_sid):
    assert response.status_code == status
    assert not CallSession.objects.filter(call_sid=call_sid).exists()


# ---------------------------------------------------------------------------
# The common case, and readiness per version mode


@pytest.mark.parametrize("mode,number,bound", [("published", 2, NEW_CALL_QUERIES),
                                               ("pinned", 1, NEW_CALL_QUERIES_OTHER_MODES)])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_new_call_is_a_few_queries_and_nothing_is_kept(connector, agent, connection, django_assert_max_num_queries,
                                                             mode, number, bound, method):
    PhoneConnector.objects.filter(pk=connector.pk).update(
        version_mode=mode, pinned_version=agent.versions.get(number=1) if mode == "pinned" else None)
    send = signed_get if method == "GET" else signed_post
    for n in (1, 2):  # the second call costs what the first did
        with django_assert_max_num_queries(bound):
            response = call(connector, connection, n, send=send)
        session = assert_connected(response, connector, call_sid=sid(n), number=number)
    assert session.workspace_id == connector.workspace_id and session.from_number == "+15125550100"
    assert session.params["AccountSid"] == connection.account_sid and len(session.stream_token_nonce) == 16
    assert CallSession.objects.count() == 2


def test_draft_mode_gets_the_draft(connector, agent, connection, django_assert_max_num_queries):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    with django_assert_max_num_queries(NEW_CALL_QUERIES_OTHER_MODES):
        response = call(connector, connection, 1)
    session = assert_connected(response, connector, call_sid=sid(1), number=draft_of(agent).number)
    assert session.agent_version.state == AgentVersion.State.DRAFT
    # Edits to the draft reach the next call at once.
    agent_services.agent_draft_update(draft=draft_of(agent), transport=AgentVersion.Transport.CONVERSATION_RELAY,
                                      language="nl-NL", voice="Polly.Lotte")
    response = call(connector, connection, 2)
    assert_connected(response, connector, call_sid=sid(2), number=draft_of(agent).number)
    relay = twiml(response).find("Connect/ConversationRelay")
    assert relay.get("language") == "nl-NL" and relay.get("voice") == "Polly.Lotte"


@pytest.mark.parametrize("pinned", ["none", "draft", "other_agent"])
def test_pinned_mode_without_a_usable_version_apologises(connector, agent, workspace, connection, pinned,
                                                         django_assert_max_num_queries):
    version = {"none": lambda: None, "draft": lambda: draft_of(agent),
               "other_agent": lambda: published_agent(workspace).versions.get(number=1)}[pinned]()
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.PINNED,
                                                          pinned_version=version)
    with django_assert_max_num_queries(APOLOGY_QUERIES):
        response = call(connector, connection, 1)
    assert_apology(response, call_sid=sid(1), reason="pinned version")


def test_published_mode_without_a_published_version_apologises(workspace, connection):
    connector = PhoneConnectorFactory(workspace=workspace)  # the agent was never published
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="no published version")


def test_draft_mode_without_a_draft_apologises(connector, agent, connection):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    draft_of(agent).delete()
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="has no draft")


def test_a_version_needing_nothing_is_connected(workspace, connection, django_assert_max_num_queries):
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    with django_assert_max_num_queries(NEW_CALL_QUERIES - 1):  # no names to look up
        response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=1)


@pytest.mark.parametrize("change", ["no_secret", "no_variable", "other_case", "other_environment"])
def test_an_environment_lacking_a_name_apologises(connector, workspace, connection, change):
    if change == "no_secret":
        EnvironmentSecret.objects.filter(environment=connector.environment).delete()
    elif change == "no_variable":
        EnvironmentVariable.objects.filter(environment=connector.environment).delete()
    elif change == "other_case":
        EnvironmentSecret.objects.filter(environment=connector.environment).update(name="api_key")
    else:
        staging = {e.kind: e for e in agent_services.environments_ensure(workspace=workspace)}["staging"]
        PhoneConnector.objects.filter(pk=connector.pk).update(environment=staging)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="lacks")


@pytest.mark.parametrize("transport,language,voice", [
    ("media_streams", "en-US", ""),
    ("conversation_relay", "nl-NL", "Polly.Lotte"),
    ("conversation_relay", "en-US", ""),
    ("conversation_relay", "en-US", 'a "quoted" & <odd> voice'),
])
def test_the_answer_for_both_transports_is_what_twilio_builds(workspace, connection, transport, language, voice):
    agent = published_agent(workspace, transport=transport, language=language, voice=voice)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=1)
    if transport == "conversation_relay":
        relay = twiml(response).find("Connect/ConversationRelay")
        assert relay.get("url") == "wss://calls.example.test/v1/stream/relay"
        assert twiml(response).find("Connect").get("action") == connector.handover_url
        assert (relay.get("language") or "", relay.get("voice") or "") == (language, voice)
    else:
        assert twiml(response).find("Connect/Stream").get("url") == "wss://calls.example.test/v1/stream/media"


@pytest.mark.parametrize("base,wss", [("https://calls.example.test", "wss://calls.example.test"),
                                      ("http://127.0.0.1:8000", "ws://127.0.0.1:8000")])
@pytest.mark.parametrize("token", ["12.nonce_-x:1abc:sig-_", 'odd & <token> "\n\r\t'])
@pytest.mark.parametrize("transport", ["media_streams", "conversation_relay"])
def test_connect_twiml_is_what_twilio_builds_for_any_base_and_token(settings, base, wss, token, transport):
    settings.PUBLIC_BASE_URL = base
    connector = PhoneConnector(identifier="abc-DEF_123")
    version = AgentVersion(transport=transport, language="en-US", voice="")
    expected = VoiceResponse()
    if transport == "conversation_relay":
        connect = Connect(action=f"{base}/v1/agents/abc-DEF_123/handover")
        connect.conversation_relay(url=f"{wss}/v1/stream/relay", language="en-US").parameter(name="session",
                                                                                             value=token)
        expected.append(connect)
    else:
        expected.connect().stream(url=f"{wss}/v1/stream/media").parameter(name="session", value=token)
    assert services.connect_twiml(connector=connector, version=version, token=token) == str(expected)


@pytest.mark.parametrize("names", [{"API_KEY": 1}, ["API_KEY", 5], [None, "API_KEY"], "API_KEY"])
def test_names_edited_by_hand_never_make_a_500(connector, agent, connection, names):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    AgentVersion.objects.filter(pk=draft_of(agent).pk).update(secrets=names)
    response = signed_post(Client(raise_request_exception=False), connector.webhook_path,
                           call_params(connection, CallSid=sid(1)), connection.auth_token)
    assert response.status_code == 200
    root = twiml(response)
    assert root.find("Connect") is not None or [child.tag for child in root] == APOLOGY_TAGS


# ---------------------------------------------------------------------------
# Changes between two calls, honoured on the very next call


@pytest.fixture
def first_call(connector, connection):
    """One call connected (nothing may be remembered from it)."""
    assert_connected(call(connector, connection, 0), connector, call_sid=sid(0), number=2)


def test_disabled_then_enabled(connector, connection, first_call):
    services.connector_disable(connector=connector)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="disabled")
    services.connector_enable(connector=connector)
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)


def test_republished(connector, agent, connection, first_call, django_assert_max_num_queries):
    agent_services.agent_draft_update(draft=draft_of(agent), greeting="Hello from v3")
    agent_services.agent_publish(agent=agent)
    with django_assert_max_num_queries(NEW_CALL_QUERIES):
        response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=3)


def test_republished_with_another_transport(connector, agent, connection, first_call):
    agent_services.agent_draft_update(draft=draft_of(agent), transport=AgentVersion.Transport.CONVERSATION_RELAY,
                                      language="en-GB")
    agent_services.agent_publish(agent=agent)
    response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=3)
    assert twiml(response).find("Connect/ConversationRelay").get("language") == "en-GB"


def test_pinned_version_changed(connector, agent, connection):
    v1, v2 = agent.versions.get(number=1), agent.versions.get(number=2)
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=v1)
    assert_connected(call(connector, connection, 1), connector, call_sid=sid(1), number=1)
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=v2)
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=v1)
    assert_connected(call(connector, connection, 3), connector, call_sid=sid(3), number=1)
    # Back to Published: the newest published version again.
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PUBLISHED)
    assert_connected(call(connector, connection, 4), connector, call_sid=sid(4), number=2)


def test_secret_removed_then_set_again(connector, connection, first_call):
    secret = EnvironmentSecret.objects.get(environment=connector.environment)
    agent_services.environment_secret_delete(secret=secret)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="lacks")
    agent_services.environment_secret_set(environment=connector.environment, name="API_KEY", value="sk-new")
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)


def test_variable_removed(connector, connection, first_call):
    variable = EnvironmentVariable.objects.get(environment=connector.environment)
    agent_services.environment_variable_delete(variable=variable)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="lacks")


def test_auth_token_rotated_twilio_signs_with_the_new_one(connector, connection, first_call,
                                                          django_assert_max_num_queries):
    old = connection.auth_token
    connection.auth_token = "a-brand-new-token-0000000000000000"
    connection.save()
    with django_assert_max_num_queries(NEW_CALL_QUERIES):
        response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=2)
    with django_assert_max_num_queries(REFUSED_QUERIES):
        response = call(connector, connection, 2, token=old)
    assert_refused(response, 403, call_sid=sid(2))


def test_auth_token_rotated_without_signals(connector, connection, first_call):
    old = connection.auth_token
    TwilioConnection.objects.filter(pk=connection.pk).update(auth_token="rotated-by-update-000000000000000")
    assert_refused(call(connector, connection, 1, token=old), 403, call_sid=sid(1))
    response = call(connector, connection, 2, token="rotated-by-update-000000000000000")
    assert_connected(response, connector, call_sid=sid(2), number=2)


def test_account_sid_changed(connector, connection, first_call):
    old_sid = connection.account_sid
    connection.account_sid = "AC" + "e" * 32
    connection.save()
    assert_refused(call(connector, connection, 1, AccountSid=old_sid), 403, call_sid=sid(1))
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)


def test_account_sid_of_another_account_is_403(connector, connection, first_call, django_assert_max_num_queries):
    with django_assert_max_num_queries(REFUSED_QUERIES):
        response = call(connector, connection, 1, AccountSid="AC" + "f" * 32)
    assert_refused(response, 403, call_sid=sid(1))


def test_connector_deleted(connector, connection, first_call, django_assert_max_num_queries):
    CallSession.objects.filter(connector=connector).delete()
    PhoneConnector.objects.filter(pk=connector.pk).delete()
    with django_assert_max_num_queries(REFUSED_QUERIES):
        response = call(connector, connection, 1)
    assert_refused(response, 404, call_sid=sid(1))


@pytest.mark.parametrize("removal", ["deleted", "token_blanked", "sid_blanked"])
def test_credentials_removed(connector, connection, first_call, removal):
    if removal == "deleted":
        TwilioConnection.objects.filter(pk=connection.pk).delete()
    elif removal == "token_blanked":
        TwilioConnection.objects.filter(pk=connection.pk).update(auth_token="")
    else:
        TwilioConnection.objects.filter(pk=connection.pk).update(account_sid="")
    assert_refused(call(connector, connection, 1), 404, call_sid=sid(1))


def test_a_retried_call_sid_gets_the_same_answer_and_one_row(connector, connection, django_assert_max_num_queries):
    first = call(connector, connection, 1)
    assert first.status_code == 200
    with django_assert_max_num_queries(RETRY_QUERIES):
        again = call(connector, connection, 1)
    session = assert_connected(again, connector, call_sid=sid(1), number=2)
    assert CallSession.objects.count() == 1
    # The retry got the same token (so Twilio's copy from the first answer stays valid), and it is single-use:
    # the stream has joined (assert_connected used it).
    assert session_token(again) == session_token(first)
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=session_token(first))
    # A replay while the call lives gets the same answer again (no new token); after it ended, the apology.
    replay = call(connector, connection, 1)
    assert session_token(replay) == session_token(first)
    CallSession.objects.filter(pk=session.pk).update(ended_at=session.started_at)
    assert [child.tag for child in twiml(call(connector, connection, 1))] == APOLOGY_TAGS
    assert CallSession.objects.count() == 1 and CallSession.objects.get().pk == session.pk


def test_a_rejected_call_retried_stays_rejected(connector, connection):
    services.connector_disable(connector=connector)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="disabled")
    services.connector_enable(connector=connector)
    assert call(connector, connection, 1).content.decode() == services.apology_twiml()
    assert CallSession.objects.get(call_sid=sid(1)).status == "rejected" and CallSession.objects.count() == 1


def test_a_call_routed_on_to_another_connector_moves_its_session(connector, agent, workspace, connection):
    second = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace, language="nl-NL"),
                                   environment=connector.environment)
    assert_connected(call(connector, connection, 1, FlowSid="FW" + "a" * 32), connector, call_sid=sid(1), number=2)
    response = call(second, connection, 1, Digits="2")
    session = assert_connected(response, second, call_sid=sid(1), number=1)
    assert session.agent_version.agent_id == second.agent_id
    assert session.params["Digits"] == "2" and session.params["FlowSid"] == "FW" + "a" * 32
    assert CallSession.objects.filter(call_sid=sid(1)).count() == 1


def test_forged_or_missing_signature_is_403_and_writes_nothing(connector, connection, first_call,
                                                               django_assert_max_num_queries):
    with django_assert_max_num_queries(REFUSED_QUERIES):
        response = call(connector, connection, 1, token="not-the-token")
    assert_refused(response, 403, call_sid=sid(1))
    assert_refused(call(connector, connection, 2, signature=""), 403, call_sid=sid(2))
    assert_refused(call(connector, connection, 3, send=signed_get, token="not-the-token"), 403, call_sid=sid(3))
    alerts = PhoneConnector.objects.get(pk=connector.pk).alert_text
    assert alerts == ""  # a forged request leaves no trace an attacker could use to fill the page
    # Genuine calls keep working.
    assert_connected(call(connector, connection, 4), connector, call_sid=sid(4), number=2)


def test_another_workspaces_token_cannot_sign(connector, connection, other_workspace):
    from .helpers import connection_for

    other = connection_for(other_workspace)
    assert_refused(call(connector, connection, 1, token=other.auth_token), 403, call_sid=sid(1))


# ---------------------------------------------------------------------------
# Internal errors: a spoken apology and an alert, never a 500


def test_an_internal_error_is_an_apology_with_an_alert(connector, connection, monkeypatch, first_call):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "inbound_call_answer", boom)
    response = signed_post(Client(raise_request_exception=False), connector.webhook_path,
                           call_params(connection, CallSid=sid(1)), connection.auth_token)
    assert response.status_code == 200
    assert response.content.decode() == services.apology_twiml()
    assert "internal error" in PhoneConnector.objects.get(pk=connector.pk).alert_text
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()


def test_a_database_error_while_resolving_is_an_apology_with_an_alert(connector, connection, monkeypatch,
                                                                      first_call):
    def unavailable(**kwargs):
        raise DatabaseError("could not read the environment")

    monkeypatch.setattr(selectors, "environment_completeness", unavailable)
    response = signed_post(Client(raise_request_exception=False), connector.webhook_path,
                           call_params(connection, CallSid=sid(1)), connection.auth_token)
    assert response.status_code == 200
    assert [child.tag for child in twiml(response)] == APOLOGY_TAGS
    assert "internal error" in PhoneConnector.objects.get(pk=connector.pk).alert_text
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()
    monkeypatch.undo()
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)
