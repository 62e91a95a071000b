"""Look and feel in chromium: the current page in the sidebar, inputs alike, long names wrap, disabled buttons
look disabled, the Studio calls filters in one row, a favicon."""
import pytest

from tests.agents.factories import AgentFactory
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

pytestmark = [pytest.mark.browser]


@pytest.fixture
def admin_page(browser_page, live_server):
    workspace = WorkspaceFactory(name="Acme")
    MembershipFactory(workspace=workspace, user=UserFactory(username="ann"), role=Membership.Role.ADMIN)
    login(browser_page, live_server, "ann")
    browser_page.workspace = workspace
    return browser_page


def _style(page, selector, prop):
    return page.eval_on_selector(selector, f"el => getComputedStyle(el).{prop}")


def test_sidebar_highlights_the_current_page(admin_page, live_server):
    page = admin_page
    page.goto(live_server.url + "/studio/agents/")
    current = page.locator(".sidebar nav a[aria-current=page]")
    assert current.count() == 1 and current.inner_text() == "Agents"
    assert _style(page, ".sidebar nav a[aria-current=page]", "fontWeight") == "600"
    page.goto(live_server.url + "/studio/calls/live/")
    assert page.locator(".sidebar nav a[aria-current=page]").inner_text() == "Live calls"  # not "Agent calls"


@pytest.mark.parametrize("width", [1024, 1366])
def test_calls_filters_line_up_uncut_and_date_inputs_look_like_the_others(admin_page, live_server, width):
    page = admin_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/studio/calls/")
    boxes = page.eval_on_selector_all("[data-testid=calls-filter] label", "els => els.map(e => {"
                                      " const r = e.getBoundingClientRect(); return [Math.round(r.left), r.width]; })")
    assert len(boxes) >= 5
    assert len({left for left, _ in boxes}) < len(boxes), boxes  # in columns: a grid, not one squeezed row
    # every select shows its whole current choice ("Any status", not "Any st")
    cut = page.eval_on_selector_all("[data-testid=calls-filter] select", """els => els.filter(s => {
        const probe = document.createElement('span'); probe.textContent = s.options[s.selectedIndex].text;
        probe.style.font = getComputedStyle(s).font; document.body.appendChild(probe);
        const text = probe.getBoundingClientRect().width; probe.remove();
        return text + 24 > s.clientWidth; }).map(s => s.name)""")
    assert cut == []
    date = "[data-testid=calls-filter] input[type=date]"
    text = "[data-testid=calls-filter] input[name=q]"
    for prop in ("borderTopWidth", "borderTopColor", "borderRadius", "paddingLeft"):
        assert _style(page, date, prop) == _style(page, text, prop), prop


def test_long_unbroken_names_wrap_instead_of_widening_the_page(admin_page, live_server):
    page = admin_page
    agent = AgentFactory(workspace=page.workspace, name="Frontdesk" * 13)  # 117 characters: the longest name the column takes
    page.goto(f"{live_server.url}/studio/agents/{agent.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(live_server.url + "/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_disabled_buttons_look_disabled_and_there_is_a_favicon(admin_page, live_server):
    page = admin_page
    page.goto(live_server.url + "/settings/dialer/numbers/search/")
    page.evaluate("""() => { const b = document.createElement('button'); b.id = 'probe'; b.disabled = true;
                             b.textContent = 'x'; document.querySelector('main').appendChild(b); }""")
    assert float(_style(page, "#probe", "opacity")) <= 0.6
    assert _style(page, "#probe", "cursor") == "not-allowed"
    href = page.get_attribute("link[rel=icon]", "href")
    assert href.endswith("favicon.svg")
    assert page.request.get(live_server.url + href).status == 200
