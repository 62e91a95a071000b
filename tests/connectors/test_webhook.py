import pytest
from django.test import Client

from agents import services as agent_services
from agents.models import AgentVersion
from calls.models import CallSession
from connectors import services
from connectors.models import PhoneConnector
from tests.agents.factories import (
    EnvironmentSecretFactory,
    EnvironmentVariableFactory,
    PhoneConnectorFactory,
    draft_of,
    published_agent,
)

from .helpers import call_params, connection_for, signed_get, signed_post, twiml

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(workspace):
    connection = connection_for(workspace)
    agent = published_agent(workspace, versions=2)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    return connection, agent, connector


def _stream(root):
    connect = root.find("Connect")
    assert connect is not None, root
    stream = connect.find("Stream")
    assert stream is not None
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    return stream, params


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_valid_signed_call_is_connected_to_the_stream(setup, method):
    connection, agent, connector = setup
    send = signed_get if method == "GET" else signed_post
    response = send(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    assert response.status_code == 200
    stream, params = _stream(twiml(response))
    assert stream.get("url") == "wss://calls.example.test/v1/stream/media"
    assert "?" not in stream.get("url")  # the URL alone is never enough
    session = CallSession.objects.get(call_sid="CA" + "1" * 32)
    assert session.agent_version.number == 2
    assert session.connector == connector and session.environment == connector.environment
    assert (session.from_number, session.to_number, session.status) == ("+15125550100", "+15125550199", "ringing")
    assert services.stream_token_consume(token=params["session"]).pk == session.pk


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_missing_signature_is_403(setup, method):
    connection, _, connector = setup
    send = signed_get if method == "GET" else signed_post
    response = send(Client(), connector.webhook_path, call_params(connection), connection.auth_token, signature="")
    assert response.status_code == 403
    assert not CallSession.objects.exists()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_forged_signature_is_403(setup, method):
    connection, _, connector = setup
    send = signed_get if method == "GET" else signed_post
    response = send(Client(), connector.webhook_path, call_params(connection), "not-the-token")
    assert response.status_code == 403
    assert not CallSession.objects.exists()


def test_signature_of_other_url_is_403(setup):
    connection, _, connector = setup
    other = PhoneConnectorFactory(workspace=connector.workspace, agent=connector.agent,
                                  environment=connector.environment)
    from django.conf import settings
    from twilio.request_validator import RequestValidator

    params = call_params(connection)
    sig = RequestValidator(connection.auth_token).compute_signature(settings.PUBLIC_BASE_URL + other.webhook_path, params)
    response = Client().post(connector.webhook_path, params, HTTP_X_TWILIO_SIGNATURE=sig)
    assert response.status_code == 403


def test_account_sid_of_another_account_is_403(setup):
    connection, _, connector = setup
    params = call_params(connection, AccountSid="AC" + "f" * 32)
    response = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    assert response.status_code == 403


def test_other_workspace_token_cannot_sign(setup, other_workspace):
    connection, _, connector = setup
    other_connection = connection_for(other_workspace)
    response = signed_post(Client(), connector.webhook_path, call_params(other_connection),
                           other_connection.auth_token)
    assert response.status_code == 403


def test_unknown_connector_is_404(setup):
    connection, _, _ = setup
    response = signed_post(Client(), "/v1/agents/no-such-connector/twilio-config", call_params(connection),
                           connection.auth_token)
    assert response.status_code == 404


def test_disabled_connector_apologises_and_alerts(setup):
    connection, _, connector = setup
    services.connector_disable(connector=connector)
    response = signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    assert response.status_code == 200
    root = twiml(response)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text
    connector.refresh_from_db()
    assert "disabled" in connector.alert_text
    session = CallSession.objects.get()
    assert session.status == "rejected" and session.agent_version is None


def test_no_published_version_apologises_and_alerts(workspace):
    connection = connection_for(workspace)
    connector = PhoneConnectorFactory(workspace=workspace)  # agent never published
    response = signed_get(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    root = twiml(response)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    connector.refresh_from_db()
    assert "no published version" in connector.alert_text


def test_missing_environment_secret_apologises_and_names_it(workspace):
    connection = connection_for(workspace)
    agent = published_agent(workspace, secrets=["OPENAI_API_KEY"], variables=["COMPANY"])
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    EnvironmentVariableFactory(environment=connector.environment, name="COMPANY")
    response = signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    assert [child.tag for child in twiml(response)] == ["Say", "Hangup"]
    connector.refresh_from_db()
    assert "OPENAI_API_KEY" in connector.alert_text and "COMPANY" not in connector.alert_text
    # Once the secret exists, the next call connects.
    EnvironmentSecretFactory(environment=connector.environment, name="OPENAI_API_KEY")
    response = signed_post(Client(), connector.webhook_path, call_params(connection, CallSid="CA" + "2" * 32),
                           connection.auth_token)
    _stream(twiml(response))


def test_retried_call_sid_returns_same_session_and_same_twiml(setup):
    connection, agent, connector = setup
    params = call_params(connection)
    first = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    _, first_params = _stream(twiml(first))
    # A publish between the two attempts must not change what the retried call gets.
    agent_services.agent_draft_update(draft=draft_of(agent), greeting="v3")
    agent_services.agent_publish(agent=agent)
    second = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    _, second_params = _stream(twiml(second))
    assert CallSession.objects.count() == 1
    session = CallSession.objects.get()
    assert session.agent_version.number == 2
    # The retry got the same token: Twilio's copy from the first answer stays valid (and is single-use).
    assert second_params["session"] == first_params["session"]
    assert services.stream_token_consume(token=first_params["session"]).pk == session.pk
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=second_params["session"])


def test_retried_rejected_call_gets_the_apology_again(setup):
    connection, _, connector = setup
    services.connector_disable(connector=connector)
    params = call_params(connection)
    signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    services.connector_enable(connector=connector)
    again = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    assert [child.tag for child in twiml(again)] == ["Say", "Hangup"]
    assert CallSession.objects.count() == 1


def test_studio_flow_redirect_is_connected_and_keeps_flow_params(setup):
    """Twilio Studio's TwiML Redirect widget POSTs the call's parameters plus the flow's (FlowSid, Digits…)."""
    connection, _, connector = setup
    params = call_params(connection, CallStatus="in-progress", FlowSid="FW" + "a" * 32, Digits="1",
                         CallerName="ACME CORP", FromCountry="US", ToCountry="US")
    response = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    _stream(twiml(response))
    session = CallSession.objects.get()
    assert session.params["FlowSid"] == "FW" + "a" * 32 and session.params["Digits"] == "1"
    assert session.status == "in-progress"


def test_conversation_relay_transport(workspace):
    connection = connection_for(workspace)
    agent = published_agent(workspace, transport=AgentVersion.Transport.CONVERSATION_RELAY, language="nl-NL")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    response = signed_get(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    connect = twiml(response).find("Connect")
    assert connect.get("action") == f"https://calls.example.test/v1/agents/{connector.identifier}/handover"
    relay = connect.find("ConversationRelay")
    assert relay.get("url") == "wss://calls.example.test/v1/stream/relay"
    assert relay.get("language") == "nl-NL"
    # The greeting is spoken once, by the runtime (its provider greets first, as on Media Streams; the
    # transcript and listeners see it): a welcomeGreeting here would make Twilio say it a second time.
    assert relay.get("welcomeGreeting") is None
    token = relay.find("Parameter").get("value")
    assert services.stream_token_consume(token=token).call_sid == "CA" + "1" * 32


def test_pinned_and_draft_modes_at_call_time(workspace):
    connection = connection_for(workspace)
    agent = published_agent(workspace, versions=2)
    pinned = PhoneConnectorFactory(workspace=workspace, agent=agent, version_mode=PhoneConnector.VersionMode.PINNED,
                                   pinned_version=agent.versions.get(number=1))
    draft_mode = PhoneConnectorFactory(workspace=workspace, agent=agent, version_mode=PhoneConnector.VersionMode.DRAFT)
    signed_post(Client(), pinned.webhook_path, call_params(connection, CallSid="CA" + "3" * 32), connection.auth_token)
    signed_post(Client(), draft_mode.webhook_path, call_params(connection, CallSid="CA" + "4" * 32),
                connection.auth_token)
    assert CallSession.objects.get(call_sid="CA" + "3" * 32).agent_version.number == 1
    assert CallSession.objects.get(call_sid="CA" + "4" * 32).agent_version.state == "draft"


def test_unexpected_error_is_an_apology_not_a_500(setup, monkeypatch):
    connection, _, connector = setup

    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "inbound_call_answer", boom)
    response = signed_post(Client(raise_request_exception=False), connector.webhook_path, call_params(connection),
                           connection.auth_token)
    assert response.status_code == 200
    assert [child.tag for child in twiml(response)] == ["Say", "Hangup"]
    connector.refresh_from_db()
    assert connector.alert_text


@pytest.mark.parametrize("mode", ["published", "pinned", "draft"])
def test_webhook_query_count_is_small(setup, django_assert_max_num_queries, mode):
    connection, agent, connector = setup
    agent_services.agent_draft_update(draft=draft_of(agent), secrets=["KEY"], variables=["COMPANY"])
    agent_services.agent_publish(agent=agent)
    EnvironmentSecretFactory(environment=connector.environment, name="KEY")
    EnvironmentVariableFactory(environment=connector.environment, name="COMPANY")
    connector.version_mode = mode
    connector.pinned_version = agent.versions.get(number=3) if mode == "pinned" else None
    connector.save()
    client = Client()
    # Connector (+ agent's latest version, the Twilio account's SID and token) 1, environment names 1,
    # INSERT 1 (+ SAVEPOINT/RELEASE inside the test's transaction), the environment's webhook endpoints 1, the
    # draft or pinned version 1 in those modes.
    with django_assert_max_num_queries(6 if mode == "published" else 7):
        response = signed_post(client, connector.webhook_path, call_params(connection), connection.auth_token)
    _stream(twiml(response))
    with django_assert_max_num_queries(10):  # the retry: + rolled-back INSERT, the existing session, a new token
        response = signed_post(client, connector.webhook_path, call_params(connection), connection.auth_token)
    _stream(twiml(response))
    # A second new call costs what the first did: nothing is kept between requests.
    with django_assert_max_num_queries(6 if mode == "published" else 7):
        response = signed_post(client, connector.webhook_path, call_params(connection, CallSid="CA" + "2" * 32),
                               connection.auth_token)
    _stream(twiml(response))


def test_webhook_makes_no_outbound_http(setup, monkeypatch):
    import socket

    connection, _, connector = setup

    def no_network(*args, **kwargs):
        raise AssertionError("the webhook must not call out")

    monkeypatch.setattr(socket, "create_connection", no_network)
    response = signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    _stream(twiml(response))


def test_relay_handover_dials_the_chosen_action(workspace):
    connection = connection_for(workspace)
    agent = published_agent(workspace, transport=AgentVersion.Transport.CONVERSATION_RELAY)
    agent_services.handover_action_create(draft=draft_of(agent), name="transfer_to_sales", destination="+31201234567")
    agent_services.agent_publish(agent=agent)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    path = f"/v1/agents/{connector.identifier}/handover"
    response = signed_post(Client(), path, call_params(connection, HandoffData='{"action": "transfer_to_sales"}'),
                           connection.auth_token)
    number = twiml(response).find("Dial/Number")
    assert number is not None and number.text == "+31201234567"
    # The leg is recorded as a handover, and its outcome comes back to the dial-result callback.
    from calls.models import CallHandover

    handover = CallHandover.objects.get()
    assert (handover.action_name, handover.destination) == ("transfer_to_sales", "+31201234567")
    assert twiml(response).find("Dial").get("action").endswith(f"/dial-result?handover={handover.pk}")
    again = signed_post(Client(), path, call_params(connection, HandoffData='{"action": "transfer_to_sales"}'),
                        connection.auth_token)
    assert twiml(again).find("Dial/Number").text == "+31201234567" and CallHandover.objects.count() == 1
    response = signed_post(Client(), path, call_params(connection, HandoffData='{"action": "nope"}'),
                           connection.auth_token)
    assert [c.tag for c in twiml(response)] == ["Hangup"]
    assert signed_post(Client(), path, call_params(connection), "forged").status_code == 403


def test_workspace_without_twilio_connection_is_404(workspace):
    from tests.factories import TwilioConnectionFactory

    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    response = signed_post(Client(), connector.webhook_path, {"CallSid": "CA" + "7" * 32}, "any-token")
    assert response.status_code == 404
    assert not CallSession.objects.exists()
    TwilioConnectionFactory(workspace=workspace, auth_token="")
    response = signed_post(Client(), connector.webhook_path, {"CallSid": "CA" + "7" * 32}, "")
    assert response.status_code == 404


def test_replayed_webhook_cannot_rearm_the_stream_of_a_live_call(setup):
    """A captured, validly signed webhook request replayed while the call's stream runs gets the same answer: the
    same, already used token (refused at the socket); never a new one."""
    connection, _, connector = setup
    params = call_params(connection)
    first = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    _, first_params = _stream(twiml(first))
    services.stream_token_consume(token=first_params["session"])  # Twilio's stream joined: the call is live
    replay = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    assert replay.status_code == 200 and replay.content == first.content
    with pytest.raises(services.InvalidStreamToken, match="already used"):
        services.stream_token_consume(token=first_params["session"])
    session = CallSession.objects.get()
    assert session.stream_token_used_at is not None and session.status != "rejected"


def test_replayed_webhook_after_the_call_ended_is_refused(setup):
    """Once the call has ended, a replay of its signed webhook gets the apology: no new token, no second stream."""
    connection, _, connector = setup
    params = call_params(connection)
    first = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    _, first_params = _stream(twiml(first))
    services.stream_token_consume(token=first_params["session"])
    session = CallSession.objects.get()
    CallSession.objects.filter(pk=session.pk).update(ended_at=session.started_at)
    nonce = CallSession.objects.get().stream_token_nonce
    replay = signed_post(Client(), connector.webhook_path, params, connection.auth_token)
    assert replay.status_code == 200
    assert [child.tag for child in twiml(replay)] == ["Say", "Hangup"]
    session = CallSession.objects.get()
    assert session.stream_token_nonce == nonce and session.stream_token_used_at is not None
    assert not PhoneConnector.objects.get(pk=connector.pk).alert_text  # a replay is not the connector's problem


def test_rejected_call_alert_is_visible_on_the_connector_page_and_dismissable(setup, admin_client):
    connection, _, connector = setup
    services.connector_disable(connector=connector)
    signed_post(Client(), connector.webhook_path, call_params(connection), connection.auth_token)
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert 'data-testid="connector-alert"' in page and "was not connected: The connector is disabled." in page
    assert 'pill err' in admin_client.get("/studio/connectors/").content.decode()
    admin_client.post(f"/studio/connectors/{connector.pk}/alert/clear/")
    assert 'data-testid="connector-alert"' not in admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
