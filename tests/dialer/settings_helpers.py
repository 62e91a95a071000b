"""Helpers for the Settings → Dialer tests (connect a workspace to a sandbox account)."""
from telephony import services
from telephony.models import TwilioConnection


def connect_byok(workspace, sandbox, django_capture_on_commit_callbacks, *, numbers=()):
    """A workspace connected (validated through the sandbox) to a fresh sandbox account."""
    sid, token = sandbox.add_account(friendly_name="Customer")
    for n in numbers:
        sandbox.add_incoming_number(sid, n)
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_save_byok(workspace=workspace, account_sid=sid, auth_token=token)
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == TwilioConnection.Status.CONNECTED, connection.error_message
    return connection, sid, token
