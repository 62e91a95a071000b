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


def test_the_lockout_says_how_long_in_words():
    from datetime import timedelta

    from workspaces.throttling import duration_words

    assert duration_words(timedelta(hours=1)) == "1 hour"
    assert duration_words(timedelta(minutes=90)) == "1 hour 30 minutes"
    assert duration_words(timedelta(minutes=45)) == "45 minutes"
    assert duration_words(timedelta(seconds=30)) == "30 seconds"
    assert duration_words(None) == ""
