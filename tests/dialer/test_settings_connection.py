"""Connecting Twilio (BYOK and Hosted) against the sandbox: validation, one key and one app, retries, faults."""
import threading

import pytest
from django.db import connection as db_connection

from telephony import errors, services, tasks
from telephony.models import CallerId, PhoneNumber, TwilioConnection
from telephony.selectors import outbound_voice_url, phone_system_status, voice_status_callback_url
from tests.factories import WorkspaceFactory

from .settings_helpers import connect_byok

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_retries():
    """Eager tasks retry like a worker would (Celery only chains eager retries when it does not propagate)."""
    from config.celery import app

    old = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = old


def _keys(sandbox, sid):
    return [k for k in sandbox.state["keys"][sid].values() if not k.get("deleted")]


def _apps(sandbox, sid):
    return list(sandbox.state["applications"][sid].values())


def test_byok_connect_validates_and_creates_one_key_and_one_app(workspace, twilio_sandbox,
                                                              django_capture_on_commit_callbacks):
    assert phone_system_status(workspace_id=workspace.pk).banner == "Connect your phone system"
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)

    connection.refresh_from_db()
    assert connection.mode == TwilioConnection.Mode.BYOK
    assert connection.validated_at is not None
    assert connection.api_key_sid.startswith("SK") and connection.api_key_secret
    assert connection.twiml_app_sid.startswith("AP")
    assert [k["sid"] for k in _keys(twilio_sandbox, sid)] == [connection.api_key_sid]
    apps = _apps(twilio_sandbox, sid)
    assert len(apps) == 1
    assert apps[0]["voice_url"] == outbound_voice_url(workspace) == f"https://calls.example.test/v1/voice/outbound/{workspace.pk}"
    assert apps[0]["status_callback"] == voice_status_callback_url(workspace)
    # The secrets are stored encrypted, not in clear text.
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT auth_token, api_key_secret FROM dialer_twilioconnection WHERE id = %s", [connection.pk])
        raw_token, raw_secret = cursor.fetchone()
    assert token not in raw_token and connection.api_key_secret not in raw_secret
    # Banner: connected, no number yet.
    assert phone_system_status(workspace_id=workspace.pk).banner == "Pick a phone number"


def test_validating_twice_reuses_key_and_app(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    key_sid, app_sid = connection.api_key_sid, connection.twiml_app_sid
    services.connection_validate(connection_id=connection.pk)
    tasks.validate_connection.delay(connection.pk)
    connection.refresh_from_db()
    assert (connection.api_key_sid, connection.twiml_app_sid) == (key_sid, app_sid)
    assert len(_keys(twilio_sandbox, sid)) == 1
    assert len(_apps(twilio_sandbox, sid)) == 1
    assert len(twilio_sandbox.requests_to(r"/Keys\.json$", "POST")) == 1
    assert len(twilio_sandbox.requests_to(r"/Applications\.json$", "POST")) == 1


def test_lost_app_row_is_found_again_not_recreated(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    app_sid = connection.twiml_app_sid
    TwilioConnection.objects.filter(pk=connection.pk).update(twiml_app_sid="")
    services.connection_validate(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.twiml_app_sid == app_sid
    assert len(_apps(twilio_sandbox, sid)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_validations_at_once_create_nothing_twice(twilio_sandbox):
    workspace = WorkspaceFactory()
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token,
                                                 status=TwilioConnection.Status.VALIDATING)
    # Slow answers widen the window in which the two runs overlap.
    twilio_sandbox.inject_fault("GET", r"/Accounts/AC[0-9a-f]+\.json$", kind="slow", delay=0.3, times=2)
    failures = []

    def run():
        try:
            services.connection_validate(connection_id=connection.pk)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert len(_keys(twilio_sandbox, sid)) == 1
    assert len(_apps(twilio_sandbox, sid)) == 1


def test_bad_credentials_end_in_error_with_twilios_message(workspace, twilio_sandbox,
                                                            django_capture_on_commit_callbacks):
    sid, _ = twilio_sandbox.add_account()
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token="0" * 32)
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == TwilioConnection.Status.ERROR
    assert connection.error_code == errors.AUTHENTICATION_FAILED
    assert connection.error_message == "Authenticate"
    status = phone_system_status(workspace_id=workspace.pk)
    assert status.banner == "Phone system error"
    assert "Authenticate (Twilio error 20003)" in status.detail
    assert not twilio_sandbox.requests_to(r"/Keys\.json$", "POST")


def test_suspended_account_is_an_error(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    sid, token = twilio_sandbox.add_account(status="suspended")
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token=token)
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == TwilioConnection.Status.ERROR
    assert "suspended" in connection.error_message


def test_byok_imports_existing_numbers_as_caller_ids(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks,
                                      numbers=["+15125550111", "+12125550122"])
    numbers = list(PhoneNumber.objects.filter(workspace=workspace).order_by("phone_number"))
    assert [n.phone_number for n in numbers] == ["+12125550122", "+15125550111"]
    assert sum(n.is_primary for n in numbers) == 1
    caller_ids = list(CallerId.objects.filter(workspace=workspace))
    assert {c.phone_number for c in caller_ids} == {"+12125550122", "+15125550111"}
    assert all(c.kind == CallerId.Kind.PROVISIONED for c in caller_ids)
    assert sum(c.is_default for c in caller_ids) == 1
    assert {c.region for c in caller_ids} == {"NY", "TX"}
    # Revalidation does not import twice.
    services.connection_validate(connection_id=connection.pk)
    assert PhoneNumber.objects.filter(workspace=workspace).count() == 2
    assert phone_system_status(workspace_id=workspace.pk).state == "ready"


def test_rate_limited_then_retried_by_the_task(workspace, twilio_sandbox, django_capture_on_commit_callbacks, eager_retries):
    sid, token = twilio_sandbox.add_account()
    twilio_sandbox.inject_fault("GET", r"/Accounts/AC[0-9a-f]+\.json$", kind="429", times=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token=token)
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert connection.retry_message == ""
    assert len(twilio_sandbox.requests_to(r"/Accounts/AC[0-9a-f]+\.json$", "GET")) == 3


def test_transient_error_says_retrying_and_gives_up_after_max_retries(workspace, twilio_sandbox, eager_retries):
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token,
                                                 status=TwilioConnection.Status.VALIDATING)
    twilio_sandbox.inject_fault("GET", r"/Accounts/AC[0-9a-f]+\.json$", kind="500", times=None)
    with pytest.raises(errors.TwilioTransientError):
        services.connection_validate(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.VALIDATING
    assert connection.retry_message.startswith("Twilio is not answering; retrying…")

    tasks.validate_connection.delay(connection.pk)  # eager: retried MAX_RETRIES times, then gives up
    connection.refresh_from_db()
    assert len(twilio_sandbox.requests_to(r"/Accounts/AC[0-9a-f]+\.json$", "GET")) == 1 + 1 + tasks.MAX_RETRIES
    assert connection.status == TwilioConnection.Status.ERROR
    assert "did not answer" in connection.error_message
    assert connection.retry_message == ""


def test_permanent_errors_are_not_retried(workspace, twilio_sandbox):
    sid, _ = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token="f" * 32,
                                                 status=TwilioConnection.Status.VALIDATING)
    tasks.validate_connection.delay(connection.pk)
    assert len(twilio_sandbox.requests_to(r"/Accounts/AC[0-9a-f]+\.json$", "GET")) == 1
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.ERROR


def test_slow_app_create_is_ambiguous_and_the_retry_finds_the_app(workspace, twilio_sandbox, eager_retries):
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token,
                                                 status=TwilioConnection.Status.VALIDATING)
    # Twilio creates the app but answers after our read timeout (2s in tests).
    twilio_sandbox.inject_fault("POST", r"/Applications\.json$", kind="slow", delay=2.5)
    tasks.validate_connection.delay(connection.pk)
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert len(_apps(twilio_sandbox, sid)) == 1
    assert connection.twiml_app_sid == _apps(twilio_sandbox, sid)[0]["sid"]
    # The key made before the failure was kept, not made again.
    assert len(_keys(twilio_sandbox, sid)) == 1


def test_key_created_but_answer_lost_leaves_exactly_one_key(workspace, twilio_sandbox, eager_retries):
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token,
                                                 status=TwilioConnection.Status.VALIDATING)
    # Twilio creates the key, then the connection drops: the secret is lost with the answer.
    twilio_sandbox.inject_fault("POST", r"/Keys\.json$", kind="drop", after_action=True)
    tasks.validate_connection.delay(connection.pk)
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert [k["sid"] for k in _keys(twilio_sandbox, sid)] == [connection.api_key_sid]
    assert len(twilio_sandbox.requests_to(r"/Keys\.json$", "POST")) == 2


def test_dropped_connection_on_app_create_is_retried_without_duplicates(workspace, twilio_sandbox, eager_retries):
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnection.objects.create(workspace=workspace, account_sid=sid, auth_token=token,
                                                 status=TwilioConnection.Status.VALIDATING)
    twilio_sandbox.inject_fault("POST", r"/Applications\.json$", kind="drop")
    tasks.validate_connection.delay(connection.pk)
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert len(_apps(twilio_sandbox, sid)) == 1


def test_periodic_revalidation_catches_a_rotated_token_and_reentering_recovers(
        workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    phone_system_status(workspace_id=workspace.pk)  # cached
    twilio_sandbox.state["accounts"][sid]["auth_token"] = "a" * 32  # rotated in the Twilio console

    assert tasks.revalidate_all_connections.delay().get() == 1
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.ERROR
    assert phone_system_status(workspace_id=workspace.pk).banner == "Phone system error"

    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token="a" * 32)
    connection.refresh_from_db()
    assert connection.status == TwilioConnection.Status.CONNECTED
    assert len(_keys(twilio_sandbox, sid)) == 1


def test_byok_keeps_the_stored_token_when_left_empty(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token=None)
    connection.refresh_from_db()
    assert connection.auth_token == token
    assert connection.status == TwilioConnection.Status.CONNECTED
    other_sid, _ = twilio_sandbox.add_account()
    with pytest.raises(services.DialerError):
        services.connection_save_byok(workspace=workspace, account_sid=other_sid, auth_token=None)


def test_hosted_creates_one_subaccount_even_after_an_ambiguous_create(workspace, twilio_sandbox, settings, eager_retries,
                                                                      django_capture_on_commit_callbacks):
    parent_sid, parent_token = twilio_sandbox.add_account(friendly_name="Platform")
    settings.TWILIO_PARENT_ACCOUNT_SID, settings.TWILIO_PARENT_AUTH_TOKEN = parent_sid, parent_token
    # The first create reaches Twilio but its answer is lost.
    twilio_sandbox.inject_fault("POST", r"/Accounts\.json$", kind="slow", delay=2.5)
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_start_hosted(workspace=workspace)
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == TwilioConnection.Status.CONNECTED, connection.error_message
    assert connection.mode == TwilioConnection.Mode.HOSTED
    subaccounts = [a for a in twilio_sandbox.state["accounts"].values() if a["owner_account_sid"] == parent_sid
                   and a["sid"] != parent_sid]
    assert len(subaccounts) == 1
    assert connection.account_sid == subaccounts[0]["sid"]
    assert len(_apps(twilio_sandbox, connection.account_sid)) == 1
    # Starting again reuses it.
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_start_hosted(workspace=workspace)
    assert len([a for a in twilio_sandbox.state["accounts"].values() if a["owner_account_sid"] == parent_sid]) == 2


def test_hosted_unavailable_without_parent_account(workspace, settings):
    settings.TWILIO_PARENT_ACCOUNT_SID = ""
    with pytest.raises(services.DialerError, match="not available"):
        services.connection_start_hosted(workspace=workspace)
    assert not TwilioConnection.objects.filter(workspace=workspace).exists()
