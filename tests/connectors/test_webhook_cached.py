"""The incoming-call webhook's per-process cache of what it read (`selectors.webhook_call_cached`).

A new call to a connector read before costs one statement: the call session's INSERT, guarded by SQL that
re-checks everything the cached entry was read from. Every change made after the entry was kept must be
honoured on the very next call, exactly as the careful path (a fresh read) honours it. These tests run on
SQLite by default and on PostgreSQL in CI (the guard is vendor-specific SQL).
"""
import re

import pytest
from django.test import Client

from agents import services as agent_services
from agents.models import EnvironmentSecret
from connectors import selectors, services
from connectors.models import CallSession, PhoneConnector
from tests.agents.factories import EnvironmentSecretFactory, PhoneConnectorFactory, draft_of, published_agent
from workspaces import sql

from .helpers import call_params, signed_get, signed_post, twiml

pytestmark = pytest.mark.django_db

APOLOGY_TAGS = ["Say", "Hangup"]




def sid(n: int) -> str:
    return f"CA{n:032x}"


def call(connector, connection, n, *, token=None, send=signed_post, signature=None, **params):
    return send(Client(), connector.webhook_path, call_params(connection, CallSid=sid(n), **params),
                token or connection.auth_token, signature=signature)


def warm(connector, connection, n=0):
    """One call that reads the connector and keeps it."""
    response = call(connector, connection, n)
    assert twiml(response).find("Connect") is not None
    assert selectors.webhook_call_cached(identifier=connector.identifier) is not None
    return response


def session_token(response) -> str:
    return re.search(r'name="session" value="([^"]*)"', response.content.decode()).group(1)


def assert_connected(response, connector, *, call_sid, number):
    """The answer is byte for byte what `connect_twiml` builds for the session recorded for this call."""
    assert response.status_code == 200
    session = CallSession.objects.select_related("agent_version").get(call_sid=call_sid)
    assert session.agent_version.number == number and session.status == "ringing"
    assert session.connector_id == connector.pk and session.environment_id == connector.environment_id
    token = session_token(response)
    expected = services.connect_twiml(connector=PhoneConnector.objects.get(pk=connector.pk),
                                      version=session.agent_version, token=token)
    assert response.content.decode() == expected
    assert services.stream_token_consume(token=token).pk == session.pk
    return session


def assert_apology(response, *, call_sid, reason):
    assert response.status_code == 200
    assert [child.tag for child in twiml(response)] == APOLOGY_TAGS
    session = CallSession.objects.get(call_sid=call_sid)
    assert session.status == "rejected" and session.agent_version is None
    assert reason in session.rejected_reason
    connector = PhoneConnector.objects.get(pk=session.connector_id)
    assert call_sid in connector.alert_text and reason in connector.alert_text
    return session


# ---------------------------------------------------------------------------
# The common case


@pytest.mark.parametrize("mode", ["published", "pinned"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_warm_new_call_is_one_query_and_the_same_answer(connector, agent, connection, django_assert_num_queries,
                                                         mode, method):
    PhoneConnector.objects.filter(pk=connector.pk).update(
        version_mode=mode, pinned_version=agent.versions.get(number=1) if mode == "pinned" else None)
    number = 1 if mode == "pinned" else 2
    send = signed_get if method == "GET" else signed_post
    with django_assert_num_queries(2):  # cold: the read and the INSERT
        cold = call(connector, connection, 1, send=send)
    assert_connected(cold, connector, call_sid=sid(1), number=number)
    with django_assert_num_queries(1):  # warm: the guarded INSERT alone
        warm_ = call(connector, connection, 2, send=send)
    session = assert_connected(warm_, connector, call_sid=sid(2), number=number)
    assert session.workspace_id == connector.workspace_id and session.from_number == "+15125550100"
    assert session.params["AccountSid"] == connection.account_sid and len(session.stream_token_nonce) == 16
    assert cold.content.decode().replace(session_token(cold), "T") == warm_.content.decode().replace(
        session_token(warm_), "T")
    assert CallSession.objects.count() == 2


def test_a_warm_conversation_relay_call_answers_what_twilio_builds(workspace, connection, django_assert_num_queries):
    agent = published_agent(workspace, transport="conversation_relay", language="nl-NL", voice="Polly.Lotte")
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent)
    warm(connector, connection)
    with django_assert_num_queries(1):
        response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=1)
    relay = twiml(response).find("Connect/ConversationRelay")
    assert relay.get("language") == "nl-NL" and relay.get("voice") == "Polly.Lotte"


def test_draft_mode_is_never_kept(connector, connection, django_assert_num_queries):
    PhoneConnector.objects.filter(pk=connector.pk).update(version_mode=PhoneConnector.VersionMode.DRAFT)
    for n in range(2):
        with django_assert_num_queries(2):
            response = call(connector, connection, n)
        assert twiml(response).find("Connect/Stream") is not None
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


def test_connectors_that_cannot_take_calls_are_never_kept(connector, connection):
    services.connector_disable(connector=connector)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="disabled")
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


# ---------------------------------------------------------------------------
# Changes made after the entry was kept, honoured on the very next call


def test_disabled_after_it_was_kept(connector, connection):
    warm(connector, connection)
    services.connector_disable(connector=connector)
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="disabled")
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


def test_republished_after_it_was_kept(connector, agent, connection, django_assert_num_queries):
    warm(connector, connection)
    agent_services.agent_draft_update(draft=draft_of(agent), greeting="Hello from v3")
    agent_services.agent_publish(agent=agent)
    assert_connected(call(connector, connection, 1), connector, call_sid=sid(1), number=3)
    with django_assert_num_queries(1):  # kept again, with the new version
        response = call(connector, connection, 2)
    assert_connected(response, connector, call_sid=sid(2), number=3)


def test_pinned_version_changed_after_it_was_kept(connector, agent, connection, workspace):
    v1, v2 = agent.versions.get(number=1), agent.versions.get(number=2)
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=v1)
    warm(connector, connection)
    assert selectors.webhook_call_cached(identifier=connector.identifier).version.pk == v1.pk
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=v2)
    assert_connected(call(connector, connection, 1), connector, call_sid=sid(1), number=2)
    # Back to Published: the same version (v2), but another mode.
    services.connector_update(connector=connector, agent=agent, environment=connector.environment,
                              version_mode=PhoneConnector.VersionMode.PUBLISHED)
    assert selectors.webhook_call_cached(identifier=connector.identifier).connector.version_mode == "pinned"
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)
    assert selectors.webhook_call_cached(identifier=connector.identifier).connector.version_mode == "published"


def test_secret_removed_after_it_was_kept(connector, connection):
    warm(connector, connection)
    agent_services.environment_secret_delete(secret=EnvironmentSecret.objects.get(environment=connector.environment))
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="lacks")
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


def test_variable_removed_after_it_was_kept(connector, connection):
    warm(connector, connection)
    connector.environment.variables.all().delete()
    assert_apology(call(connector, connection, 1), call_sid=sid(1), reason="lacks")


def test_auth_token_rotated_twilio_signs_with_the_new_one(connector, connection, django_assert_num_queries):
    warm(connector, connection)
    connection.auth_token = "a-brand-new-token-0000000000000000"
    connection.save()
    with django_assert_num_queries(2):  # the kept token fails the signature: one extra read, then the INSERT
        response = call(connector, connection, 1)
    assert_connected(response, connector, call_sid=sid(1), number=2)
    with django_assert_num_queries(1):  # kept again, with the new token
        response = call(connector, connection, 2)
    assert_connected(response, connector, call_sid=sid(2), number=2)
    response = call(connector, connection, 3, token="the-old-token")
    assert response.status_code == 403 and not CallSession.objects.filter(call_sid=sid(3)).exists()


def test_auth_token_rotated_a_request_signed_with_the_old_one_is_403(connector, connection):
    old = connection.auth_token
    warm(connector, connection)
    connection.auth_token = "a-brand-new-token-0000000000000000"
    connection.save()
    # Signed with the token the entry holds: only the guard (the stored ciphertext) can tell it is stale.
    response = call(connector, connection, 1, token=old)
    assert response.status_code == 403
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)


def test_account_sid_changed_after_it_was_kept(connector, connection):
    warm(connector, connection)
    old_sid = connection.account_sid
    connection.account_sid = "AC" + "e" * 32
    connection.save()
    response = call(connector, connection, 1, AccountSid=old_sid)
    assert response.status_code == 403 and not CallSession.objects.filter(call_sid=sid(1)).exists()
    assert_connected(call(connector, connection, 2), connector, call_sid=sid(2), number=2)


def test_account_sid_of_another_account_is_403(connector, connection):
    warm(connector, connection)
    response = call(connector, connection, 1, AccountSid="AC" + "f" * 32)
    assert response.status_code == 403
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()


def test_connector_deleted_after_it_was_kept(connector, connection):
    warm(connector, connection)
    PhoneConnector.objects.filter(pk=connector.pk).delete()
    response = call(connector, connection, 1)
    assert response.status_code == 404
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


def test_credentials_removed_after_it_was_kept(connector, connection):
    warm(connector, connection)
    connection.delete()
    response = call(connector, connection, 1)
    assert response.status_code == 404
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()


def test_a_retried_call_sid_gets_the_same_answer_and_one_row(connector, connection):
    first = warm(connector, connection, n=1)
    again = call(connector, connection, 1)
    session = assert_connected(again, connector, call_sid=sid(1), number=2)
    assert CallSession.objects.count() == 1
    # Only the newest token is valid (the retry replaced the one Twilio never used).
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=session_token(first))
    # The stream has joined (assert_connected used the token): a replay gets the apology and no new token.
    replay = call(connector, connection, 1)
    assert [child.tag for child in twiml(replay)] == APOLOGY_TAGS
    assert CallSession.objects.count() == 1 and CallSession.objects.get().pk == session.pk


def test_a_call_routed_on_to_another_kept_connector_moves_its_session(connector, agent, workspace, connection):
    second = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace, language="nl-NL"),
                                   environment=connector.environment)
    warm(connector, connection)
    warm(second, connection, n=99)
    assert_connected(call(connector, connection, 1), connector, call_sid=sid(1), number=2)
    response = call(second, connection, 1, Digits="2")
    session = assert_connected(response, second, call_sid=sid(1), number=1)
    assert session.params["Digits"] == "2" and CallSession.objects.filter(call_sid=sid(1)).count() == 1


def test_forged_signature_on_a_kept_connector_is_403(connector, connection, django_assert_num_queries):
    warm(connector, connection)
    with django_assert_num_queries(1):  # the careful path's read, with which the signature fails again
        response = call(connector, connection, 1, token="not-the-token")
    assert response.status_code == 403
    assert not CallSession.objects.filter(call_sid=sid(1)).exists()
    response = call(connector, connection, 2, signature="")
    assert response.status_code == 403
    assert not CallSession.objects.filter(call_sid=sid(2)).exists()
    # The careful path read the connector again: genuine calls keep the one-statement path.
    with django_assert_num_queries(1):
        response = call(connector, connection, 3)
    assert_connected(response, connector, call_sid=sid(3), number=2)


def test_an_error_in_the_cached_path_is_an_apology_and_forgets_the_entry(connector, connection, monkeypatch):
    warm(connector, connection)

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "inbound_call_answer_cached", boom)
    response = call(connector, connection, 1)
    assert [child.tag for child in twiml(response)] == APOLOGY_TAGS
    assert "internal error" in PhoneConnector.objects.get(pk=connector.pk).alert_text
    assert selectors.webhook_call_cached(identifier=connector.identifier) is None


# ---------------------------------------------------------------------------
# The guard on its own, and the cache


def _guard_holds(entry) -> bool:

    guard, params = selectors.webhook_call_guard(entry=entry)
    return sql.fetch_one(f"SELECT 1 WHERE {guard}", params) is not None


@pytest.mark.parametrize("change", [
    "disabled", "agent", "environment", "mode", "pinned", "latest", "secret_emptied", "account_sid", "token",
    "connection_of_other_workspace", "identifier",
])
def test_the_guard_fails_on_any_change(connector, agent, connection, workspace, other_workspace, change):
    from dialer.models import TwilioConnection

    warm(connector, connection)
    entry = selectors.webhook_call_cached(identifier=connector.identifier)
    assert _guard_holds(entry)
    connectors = PhoneConnector.objects.filter(pk=connector.pk)
    if change == "disabled":
        connectors.update(enabled=False)
    elif change == "agent":
        connectors.update(agent=published_agent(workspace, secrets=["API_KEY"]))
    elif change == "environment":
        staging = {e.kind: e for e in agent_services.environments_ensure(workspace=workspace)}["staging"]
        connectors.update(environment=staging)
    elif change == "mode":
        connectors.update(version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=entry.version)
    elif change == "pinned":
        connectors.update(version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=entry.version)
        entry = selectors.webhook_call_remember(call=selectors.webhook_call_context(identifier=connector.identifier))
        assert _guard_holds(entry)
        connectors.update(pinned_version=agent.versions.get(number=1))
    elif change == "latest":
        agent.latest_version = agent.versions.get(number=1)
        agent.save(update_fields=["latest_version"])
    elif change == "secret_emptied":
        from django.db import connection as db

        with db.cursor() as cursor:
            cursor.execute(f"UPDATE {EnvironmentSecret._meta.db_table} SET value = ''")
    elif change == "account_sid":
        TwilioConnection.objects.filter(pk=connection.pk).update(account_sid="AC" + "e" * 32)
    elif change == "token":
        connection.auth_token = connection.auth_token  # the same token, encrypted anew: another ciphertext
        connection.save()
    elif change == "connection_of_other_workspace":
        TwilioConnection.objects.filter(pk=connection.pk).update(workspace=other_workspace)
    else:
        connectors.update(identifier="another-identifier")
    assert not _guard_holds(entry)


def test_the_guard_holds_when_unrelated_things_change(connector, agent, connection):
    warm(connector, connection)
    entry = selectors.webhook_call_cached(identifier=connector.identifier)
    agent_services.agent_draft_update(draft=draft_of(agent), greeting="Edited, not published")
    services.connector_alert_set(connector=connector, text="Something happened")
    PhoneConnector.objects.filter(pk=connector.pk).update(name="Renamed")
    EnvironmentSecretFactory(environment=connector.environment, name="UNUSED")
    assert _guard_holds(entry)


def test_the_cache_is_bounded():
    assert selectors._webhook_calls.maxsize == selectors.WEBHOOK_CACHE_SIZE == 1024


def test_many_connectors_stay_within_the_bound(workspace, connection, monkeypatch):
    monkeypatch.setattr(selectors, "_webhook_calls", sql.LocalCache(maxsize=2))
    agent = published_agent(workspace)
    connectors = [PhoneConnectorFactory(workspace=workspace, agent=agent) for _ in range(3)]
    for n, connector in enumerate(connectors):
        warm(connector, connection, n)
    assert len(selectors._webhook_calls) == 2
    assert selectors.webhook_call_cached(identifier=connectors[0].identifier) is None
    assert_connected(call(connectors[0], connection, 10), connectors[0], call_sid=sid(10), number=1)


def test_the_entry_hides_the_token(connector, connection):
    warm(connector, connection)
    entry = selectors.webhook_call_cached(identifier=connector.identifier)
    assert entry.auth_token == connection.auth_token and entry.auth_token_stored.startswith("gAAAA")
    assert connection.auth_token not in repr(entry) and entry.auth_token_stored not in repr(entry)
