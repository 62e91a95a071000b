"""Event webhooks in a real browser: from the environment page, add an endpoint (the secret shown once), send a
test event that the local receiver verifies with that secret, see it in the delivery log, redeliver it."""
import pytest
from standardwebhooks import Webhook

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from webhooks.models import WebhookEndpoint, WebhookEvent
from workspaces.models import Membership


@pytest.mark.browser
def test_an_admin_adds_an_endpoint_sends_a_test_event_and_redelivers_it(browser_page, live_server, receiver):
    page = browser_page
    rx = receiver()
    workspace = WorkspaceFactory(name="Acme")
    MembershipFactory(workspace=workspace, user=UserFactory(username="hook-admin"), role=Membership.Role.ADMIN)
    login(page, live_server, "hook-admin")
    page.goto(f"{live_server.url}/studio/environments/production/")
    assert "No endpoints" in page.locator("[data-testid=webhook-summary]").inner_text()
    page.click("[data-testid=manage-webhooks]")
    page.fill("#id_endpoint-url", rx.url)
    page.uncheck("input[name=endpoint-events][value='recording.ready']")
    page.click("[data-testid=add-endpoint]")
    secret = page.locator("[data-testid=signing-secret]").input_value().strip()
    assert secret.startswith("whsec_")
    assert "recording.ready" not in WebhookEndpoint.objects.get().events
    page.click("[data-testid=endpoint-row] a >> nth=0")
    assert secret not in page.content()
    page.click("[data-testid=send-test]")
    page.wait_for_selector("text=Test event queued")
    row = page.locator("[data-testid=delivery-row]")
    assert "webhook.test" in row.inner_text() and "Delivered" in row.inner_text() and "200" in row.inner_text()
    [got] = rx.requests
    assert Webhook(secret).verify(got.body, got.headers)["data"]["environment"] == "production"
    page.click("[data-testid=redeliver]")
    page.wait_for_selector("text=queued for redelivery")
    assert [r.headers["webhook-id"] for r in rx.requests] == [WebhookEvent.objects.get().msg_id] * 2
    assert "2 attempts" in page.locator("[data-testid=delivery-row]").inner_text()
