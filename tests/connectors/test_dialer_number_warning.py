"""Attaching the dialer's only number to a connector: the choice says so, and the page warns once it is done; a
second dialer number means no warning."""
import pytest

from tests.agents.factories import PhoneConnectorFactory, published_agent
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(workspace, twilio_sandbox):
    sid, token = twilio_sandbox.add_account()
    TwilioConnectionFactory(workspace=workspace, account_sid=sid, auth_token=token)
    number_sid = twilio_sandbox.add_incoming_number(sid, "+15125550142")
    number = PhoneNumberFactory(workspace=workspace, sid=number_sid, phone_number="+15125550142")
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    return twilio_sandbox, sid, number, connector


def test_the_only_dialer_number_is_marked_and_attaching_it_warns(admin_client, setup):
    _, _, number, connector = setup
    page = admin_client.get(f"/studio/connectors/{connector.pk}/").content.decode()
    assert "+15125550142 (the dialer&#x27;s only number" in page
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/attach/", {"phone_number": number.pk},
                                 follow=True)
    text = response.content.decode()
    assert "was the dialer&#x27;s only number: calls to the dialer cannot come in" in text


def test_no_warning_while_another_number_rings_the_dialer(admin_client, setup, workspace):
    sandbox, sid, number, connector = setup
    PhoneNumberFactory(workspace=workspace, sid=sandbox.add_incoming_number(sid, "+15125550143"),
                       phone_number="+15125550143")
    response = admin_client.post(f"/studio/connectors/{connector.pk}/numbers/attach/", {"phone_number": number.pk},
                                 follow=True)
    assert "was the dialer&#x27;s only number" not in response.content.decode()
