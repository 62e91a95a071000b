"""No word broken in two: at 1024 and 1366 px, headers, pills, labels and buttons of the busiest pages (Studio calls,
phone numbers, webhooks, live calls, the dialer panel) keep every word on one line. Measured in the page: each
word of each element's text is a DOM Range, and a word split across lines has more than one client rect."""
import os

import pytest

from calls.models import CallSession
from tests.agents.factories import EnvironmentFactory, PhoneConnectorFactory, published_agent
from tests.factories import (
    MembershipFactory,
    PhoneNumberFactory,
    TwilioConnectionFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.fixtures_browser import login
from webhooks import services as webhook_services
from webhooks.models import EventType
from workspaces.models import Membership

pytestmark = [pytest.mark.browser]

BROKEN_WORDS = """(selector) => {
  const broken = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;  // hidden
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /\\S+/g; let m;
      while ((m = re.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(el.tagName + ' ' + (el.className || '') + ': ' + m[0]);
      }
    }
  }
  return broken;
}"""
SELECTOR = "th, .pill, label, button, .button, nav.tabs a"


@pytest.fixture
def busy_workspace(browser_page, live_server):
    workspace = WorkspaceFactory(name="Acme")
    MembershipFactory(workspace=workspace, user=UserFactory(username="ann"), role=Membership.Role.ADMIN)
    TwilioConnectionFactory(workspace=workspace)
    PhoneNumberFactory(workspace=workspace, phone_number="+15125550199", is_primary=True)
    environment = EnvironmentFactory(workspace=workspace, kind="production")
    agent = published_agent(workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, environment=environment)
    version = agent.versions.filter(number__isnull=False).first()
    for i, status in enumerate(["completed", "in-progress", "no-answer", "failed"]):
        CallSession.objects.create(workspace=workspace, connector=connector, environment=environment,
                                   agent_version=version,
                                   call_sid=f"CA{i:032d}", from_number="+15125550100", to_number="+15125550199",
                                   status=status)
    webhook_services.endpoint_create(environment=environment, url="https://hooks.example.com/callwell",
                                     events=EventType.values)
    login(browser_page, live_server, "ann")
    return workspace, environment


@pytest.mark.parametrize("width", [1024, 1366])
def test_no_header_pill_or_button_breaks_inside_a_word(browser_page, live_server, busy_workspace, width):
    _, environment = busy_workspace
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    broken = {}
    for path in ("/studio/calls/", "/studio/calls/live/", "/settings/dialer/numbers/",
                 f"/studio/environments/{environment.kind}/webhooks/", "/"):
        page.goto(live_server.url + path)
        if os.environ.get("LOOK_SHOTS"):
            page.screenshot(path=f"{os.environ['LOOK_SHOTS']}/{width}{path.replace('/', '_')}.png", full_page=True)
        found = page.evaluate(BROKEN_WORDS, SELECTOR)
        if found:
            broken[path] = found
    page.click("[data-testid=dialer-toggle]")  # the dialer panel, open
    if os.environ.get("LOOK_SHOTS"):
        page.screenshot(path=f"{os.environ['LOOK_SHOTS']}/{width}_dialer.png")
    found = page.evaluate(BROKEN_WORDS, "[data-testid=dialer-panel] *")
    if found:
        broken["dialer panel"] = found
    assert broken == {}
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_floating_dialer_button_covers_nothing_on_the_agent_page(browser_page, live_server, busy_workspace):
    workspace, _ = busy_workspace
    page = browser_page
    page.set_viewport_size({"width": 1024, "height": 700})
    agent = workspace.agents.first()
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    covered = page.evaluate("""() => [...document.querySelectorAll('main select, main button, main input, main a')]
        .filter(el => { const r = el.getBoundingClientRect();
                        if (!r.width || r.bottom < 0 || r.top > innerHeight) return false;
                        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                        return hit && !el.contains(hit) && hit.closest('[data-testid=dialer-toggle]'); })
        .map(el => el.name || el.textContent.trim())""")
    assert covered == []


def test_links_and_link_buttons_look_alike(browser_page, live_server, busy_workspace):
    page = browser_page
    page.goto(live_server.url + "/settings/dialer/numbers/")
    page.evaluate("""() => { const b = document.createElement('button'); b.className = 'link'; b.id = 'probe';
                             b.textContent = 'Remove'; const a = document.createElement('a'); a.href = '#';
                             a.id = 'probe-link'; a.textContent = 'Edit'; document.querySelector('main').append(b, a); }""")
    link = page.eval_on_selector("#probe-link", "el => [getComputedStyle(el).textDecorationLine, getComputedStyle(el).color]")
    button = page.eval_on_selector("#probe", "el => [getComputedStyle(el).textDecorationLine, getComputedStyle(el).color]")
    assert button == link


def test_the_analytics_page_draws_its_charts(browser_page, live_server, busy_workspace):
    workspace, _ = busy_workspace
    agent = workspace.agents.first()
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/studio/analytics/?agent={agent.pk}")
    if os.environ.get("LOOK_SHOTS"):
        page.screenshot(path=f"{os.environ['LOOK_SHOTS']}/analytics.png", full_page=True)
    assert page.locator("svg.chart").count() >= 11
    assert page.locator("[data-chart=calls] svg circle").count() >= 1  # today's calls are a point
    page.locator("[data-chart=calls] summary").click()
    assert page.locator("[data-chart=calls] table").is_visible()
    assert page.evaluate(BROKEN_WORDS, SELECTOR) == []
