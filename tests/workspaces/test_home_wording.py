"""Home page words and colours: "an admin" / "a member", and a phone-system error in red, not amber."""
import pytest

from telephony.models import TwilioConnection
from tests.factories import TwilioConnectionFactory

pytestmark = pytest.mark.django_db


def test_home_says_an_admin_and_a_member(admin_client, member_client):
    assert "You are an admin of this workspace." in admin_client.get("/").content.decode()
    assert "You are a member of this workspace." in member_client.get("/").content.decode()


def test_a_phone_system_error_is_red_on_home(admin_client, workspace):
    TwilioConnectionFactory(workspace=workspace, status=TwilioConnection.Status.ERROR, error_message="Authenticate")
    page = admin_client.get("/").content.decode()
    badge = page[page.index('data-testid="home-phone-state"') - 60:page.index('data-testid="home-phone-state"')]
    assert "pill err" in badge and "pill warn" not in badge
