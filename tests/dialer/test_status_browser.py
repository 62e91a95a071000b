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


def _enter_credentials(page, live_server, sid, token):
    page.goto(live_server.url + "/settings/dialer/")
    page.get_by_label("Account SID").fill(sid)
    page.get_by_label("Auth Token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Save and connect").click()


def test_checking_note_goes_once_connected(browser_page, live_server, workspace, admin, twilio_sandbox):
    sid, token = twilio_sandbox.add_account()
    login(browser_page, live_server, "ada")
    _enter_credentials(browser_page, live_server, sid, token)  # validated at once (eager task)
    browser_page.wait_for_selector('[data-testid="connection-card"][data-state="connected"]')
    note = browser_page.locator(".message", has_text="Checking them with Twilio")
    assert note.count() == 1 and note.is_hidden()


def test_a_connection_error_shows_in_the_card_and_the_sidebar_banner(browser_page, live_server, workspace, admin,
                                                                     twilio_sandbox):
    """The card says what failed; the sidebar keeps the product's red "Phone system error" banner on this page as on
    every other (it used to disappear here: issue 27)."""
    sid, _ = twilio_sandbox.add_account()
    login(browser_page, live_server, "ada")
    _enter_credentials(browser_page, live_server, sid, "0123456789abcdef0123456789abcdef")
    browser_page.wait_for_selector('[data-testid="connection-card"][data-state="error"]')
    visible = [t for t in browser_page.get_by_text("Phone system error").all() if t.is_visible()]
    assert len(visible) == 2  # the card's error and the sidebar's banner
    assert browser_page.locator("#phone-system-status .banner-error").is_visible()
    assert browser_page.locator(".message", has_text="Checking them with Twilio").is_hidden()
    browser_page.goto(live_server.url + "/calls/")  # elsewhere the sidebar says it
    assert "Phone system error" in browser_page.locator("#phone-system-status").inner_text()


def test_phone_numbers_page_shows_where_each_numbers_calls_go(browser_page, live_server, workspace, admin,
                                                             twilio_sandbox, django_capture_on_commit_callbacks):
    from connectors import services as connector_services
    from telephony import twilio_gateway
    from telephony.models import PhoneNumber
    from tests.agents.factories import PhoneConnectorFactory

    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks,
                                      numbers=("+15125550100", "+15125550101", "+15125550102"))
    creds = connection.credentials()
    remote = {n.phone_number: n for n in twilio_gateway.incoming_numbers_list(creds=creds)}
    twilio_gateway.incoming_number_update(creds=creds, number_sid=remote["+15125550100"].sid, voice_url="",
                                          voice_application_sid=connection.twiml_app_sid)
    twilio_gateway.incoming_number_update(creds=creds, number_sid=remote["+15125550102"].sid,
                                          voice_url="https://elsewhere.example/voice", voice_application_sid="")
    connector = PhoneConnectorFactory(workspace=workspace, name="Front desk line")
    connector_services.connector_number_attach(
        connector=connector, phone_number=PhoneNumber.objects.get(phone_number="+15125550101"))
    login(browser_page, live_server, "ada")
    browser_page.goto(live_server.url + "/settings/dialer/numbers/")
    rows = {r.locator("code").first.inner_text(): r.get_by_test_id("number-destination")
            for r in browser_page.get_by_test_id("number-row").all()}
    assert rows["+15125550100"].inner_text() == "Browser dialer"
    assert "Studio connector Front desk line" in rows["+15125550101"].inner_text()
    assert rows["+15125550101"].locator("a").get_attribute("href") == f"/studio/connectors/{connector.pk}/"
    assert rows["+15125550102"].inner_text() == "Elsewhere: https://elsewhere.example/voice"


def test_provisioning_asks_to_confirm_and_area_codes_are_explained(browser_page, live_server, workspace, admin,
                                                                  twilio_sandbox, django_capture_on_commit_callbacks):
    from telephony.models import PhoneNumber

    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    login(browser_page, live_server, "ada")
    page = browser_page
    page.goto(live_server.url + "/settings/dialer/numbers/search/")
    for typed, expected in (("12ab", "Enter a 3-digit US area code"), ("999", "No numbers in area code 999")):
        page.get_by_label("Area code").fill(typed)
        with page.expect_navigation():
            page.get_by_role("button", name="Search").click()
        assert expected in page.locator("main").inner_text()
    page.get_by_label("Area code").fill("512")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    first = page.get_by_test_id("result-row").first
    number = first.locator("code").inner_text()
    with page.expect_navigation():
        first.get_by_role("button", name="Provision").click()
    confirm = page.get_by_test_id("provision-confirm").inner_text()
    assert number in confirm and "Austin" in confirm and sid in confirm and "Twilio account" in confirm
    assert not PhoneNumber.objects.exists()  # nothing bought before confirming
    with page.expect_navigation():
        page.get_by_test_id("confirm-provision").click()
    assert number in page.get_by_test_id("numbers-table").inner_text()
    assert PhoneNumber.objects.get().phone_number == number
