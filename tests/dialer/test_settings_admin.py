"""Admin: Twilio secrets are never shown, only replaced; saving drops the cached banner."""
import pytest

from telephony.models import TwilioConnection
from telephony.selectors import phone_system_status
from tests.factories import TwilioConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(client):
    user = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def _form_data(connection, **extra):
    data = {"workspace": connection.workspace_id, "mode": connection.mode, "account_sid": connection.account_sid,
            "status": connection.status, "error_code": "", "error_message": "", "api_key_sid": "",
            "twiml_app_sid": "", "retry_message": "", "new_auth_token": ""}
    data.update(extra)
    return data


def test_change_form_masks_and_replaces_the_token(ops_client):
    connection = TwilioConnectionFactory(auth_token="0123456789abcdef0123456789abcdef")
    url = f"/admin/telephony/twilioconnection/{connection.pk}/change/"
    html = ops_client.get(url).content.decode()
    assert "0123456789abcdef0123456789abcdef" not in html
    assert "••••cdef" in html
    assert 'name="new_auth_token"' in html and 'name="auth_token"' not in html

    # Empty keeps the token; a value replaces it.
    assert ops_client.post(url, _form_data(connection)).status_code == 302
    connection.refresh_from_db()
    assert connection.auth_token == "0123456789abcdef0123456789abcdef"
    phone_system_status(workspace_id=connection.workspace_id)  # cached: ready/no_number
    TwilioConnection.objects.filter(pk=connection.pk).update(status="error")  # e.g. the task found it broken
    response = ops_client.post(url, _form_data(connection, new_auth_token="f" * 32))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.auth_token == "f" * 32
    assert phone_system_status(workspace_id=connection.workspace_id).banner == "Phone system error"


def test_bad_values_are_refused(ops_client):
    connection = TwilioConnectionFactory()
    url = f"/admin/telephony/twilioconnection/{connection.pk}/change/"
    response = ops_client.post(url, _form_data(connection, new_auth_token="x"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "An Auth Token is 32 letters and digits" in html
    assert TwilioConnection.objects.get(pk=connection.pk).auth_token == connection.auth_token


def test_status_account_sid_and_api_key_are_read_only(ops_client):
    """They come from Twilio and the validation task: the admin shows them and ignores a posted value."""
    connection = TwilioConnectionFactory(api_key_sid="SK" + "1" * 32)
    url = f"/admin/telephony/twilioconnection/{connection.pk}/change/"
    html = ops_client.get(url).content.decode()
    for name in ("status", "account_sid", "api_key_sid"):
        assert f'name="{name}"' not in html
    assert connection.account_sid in html and connection.api_key_sid in html
    response = ops_client.post(url, _form_data(connection, account_sid="AC" + "0" * 32, status="error",
                                               api_key_sid="SK" + "2" * 32))
    assert response.status_code == 302
    stored = TwilioConnection.objects.get(pk=connection.pk)
    assert (stored.account_sid, stored.status, stored.api_key_sid) == (
        connection.account_sid, connection.status, connection.api_key_sid)


def test_ops_can_queue_a_credentials_check_after_replacing_a_token(ops_client, twilio_sandbox,
                                                                  django_capture_on_commit_callbacks):
    sid, token = twilio_sandbox.add_account()
    connection = TwilioConnectionFactory(account_sid=sid, auth_token="f" * 32,
                                         status=TwilioConnection.Status.ERROR, error_code=20003)
    url = f"/admin/telephony/twilioconnection/{connection.pk}/change/"
    assert ops_client.post(url, _form_data(connection, new_auth_token=token)).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = ops_client.post("/admin/telephony/twilioconnection/",
                                   {"action": "check_credentials_now", "_selected_action": [connection.pk]}, follow=True)
    assert "Queued a credentials check for 1 connection(s)." in response.content.decode()
    connection.refresh_from_db()  # the task ran in-process (eager in tests) against the sandbox
    assert connection.status == TwilioConnection.Status.CONNECTED and connection.error_code is None
