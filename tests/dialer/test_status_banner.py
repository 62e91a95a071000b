"""The sidebar's phone-system banner on every page: the product document's three banners, each linking to its fix,
a connected indicator otherwise, and at most one cache lookup per page (no SQL once cached, never a Twilio call)."""
import pytest

from telephony import selectors
from telephony.models import TwilioConnection
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory

pytestmark = pytest.mark.django_db


def _banner(html: str) -> str:
    start = html.index('id="phone-system-status"')
    return html[start:start + 1200]


@pytest.mark.parametrize("state, title, link", [
    ("none", "Connect your phone system", 'href="/settings/dialer/"'),
    ("no_number", "Pick a phone number", 'href="/settings/dialer/numbers/search/"'),
    ("error", "Phone system error", 'href="/settings/dialer/"'),
])
def test_each_banner_links_to_its_fix_on_any_page(admin_client, member_client, workspace, state, title, link):
    if state == "no_number":
        TwilioConnectionFactory(workspace=workspace)
    elif state == "error":
        TwilioConnectionFactory(workspace=workspace, status=TwilioConnection.Status.ERROR, error_code=20003,
                                error_message="Authenticate")
    banner = _banner(admin_client.get("/calls/").content.decode())
    assert 'data-testid="phone-banner"' in banner and title in banner and link in banner
    if state == "error":
        assert "Authenticate (Twilio error 20003)" in banner  # Twilio's message and code
    others = {"Connect your phone system", "Pick a phone number", "Phone system error"} - {title}
    assert not any(other in banner for other in others)
    # A member sees the same banner, but the fix is an admin's (Settings → Dialer is 403 for them): no dead link.
    banner = _banner(member_client.get("/calls/").content.decode())
    assert title in banner and link not in banner and "Ask a workspace admin" in banner


def test_connected_shows_an_indicator_and_no_banner(member_client, workspace):
    TwilioConnectionFactory(workspace=workspace)
    PhoneNumberFactory(workspace=workspace)
    banner = _banner(member_client.get("/calls/").content.decode())
    assert 'data-testid="phone-status"' in banner and "Phone system connected" in banner
    assert 'data-testid="phone-banner"' not in banner


def test_banner_costs_one_cache_lookup_not_sql_nor_twilio(member_client, workspace, twilio_sandbox, monkeypatch,
                                                          django_assert_num_queries):
    TwilioConnectionFactory(workspace=workspace)
    PhoneNumberFactory(workspace=workspace)
    member_client.get("/calls/")  # first page view computes and caches it
    computed = []
    monkeypatch.setattr(selectors, "phone_system_status_compute",
                        lambda **kw: computed.append(kw) or pytest.fail("banner recomputed"))
    with django_assert_num_queries(0):
        assert selectors.phone_system_status(workspace_id=workspace.pk).state == "ready"
    html = member_client.get("/calls/").content.decode()
    assert "Phone system connected" in _banner(html)
    assert computed == [] and not twilio_sandbox.requests
