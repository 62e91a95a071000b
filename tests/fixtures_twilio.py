"""Fixtures for the Twilio sandbox (`twilio_sandbox`): a real HTTP server on 127.0.0.1 per test.

    def test_something(twilio_sandbox):
        sid, token = twilio_sandbox.add_account()
        creds = twilio_gateway.Credentials(sid, token)
        ...

`settings.TWILIO_API_BASE_URL` points at the sandbox for the duration of the test
and the gateway's pooled HTTP client is reset before and after.
"""
import pytest

from devtools.twilio_sandbox import SandboxServer
from telephony import twilio_gateway


@pytest.fixture
def twilio_sandbox(settings):
    sandbox = SandboxServer().start()
    settings.TWILIO_API_BASE_URL = sandbox.base_url
    twilio_gateway.reset_http_client()
    try:
        yield sandbox
    finally:
        twilio_gateway.reset_http_client()
        sandbox.stop()


@pytest.fixture
def sandbox_account(twilio_sandbox):
    """(sandbox, Credentials) of one active account known to the sandbox."""
    sid, token = twilio_sandbox.add_account(friendly_name="Test account")
    return twilio_sandbox, twilio_gateway.Credentials(account_sid=sid, auth_token=token)
