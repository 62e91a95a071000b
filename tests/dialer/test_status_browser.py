"""Status that tells the truth, in chromium: pages that update by themselves, and notes that go once stale."""
import pytest

from telephony.models import CallerId
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

from .settings_helpers import connect_byok

pytestmark = [pytest.mark.browser]


@pytest.fixture
def admin(workspace):
    user = UserFactory(username="ada")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    return user


def test_caller_id_verification_updates_by_itself_while_pending(browser_page, live_server, workspace, admin,
                                                                twilio_sandbox, django_capture_on_commit_callbacks):
    from telephony import services

    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    services.caller_id_add_external(workspace=workspace, phone_number="+14155550123", friendly_name="Desk")
    assert not CallerId.objects.get(phone_number="+14155550123").is_usable
    login(browser_page, live_server, "ada")
    browser_page.goto(live_server.url + "/settings/dialer/caller-ids/")
    card = browser_page.get_by_test_id("caller-ids-card")
    assert "Waiting for verification" in card.inner_text()
    twilio_sandbox.complete_validation(sid, "+14155550123")  # the person typed the code; nobody clicks anything
    browser_page.wait_for_selector('[data-testid="caller-ids-card"]:not([data-pending])')
    assert "Waiting for verification" not in card.inner_text() and "Ready" in card.inner_text()
    assert CallerId.objects.get(phone_number="+14155550123").is_usable
