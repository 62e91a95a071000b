"""The top bar's workspace switcher and staff's "New workspace", in chromium."""
import pytest

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership, Workspace

pytestmark = [pytest.mark.browser]


def test_a_user_in_two_workspaces_switches_from_the_top_bar(browser_page, live_server):
    first, second = WorkspaceFactory(name="Acme"), WorkspaceFactory(name="Beta Co")
    user = UserFactory(username="carol")
    MembershipFactory(workspace=first, user=user, role=Membership.Role.MEMBER)
    MembershipFactory(workspace=second, user=user, role=Membership.Role.ADMIN)
    login(browser_page, live_server, "carol")
    switch = browser_page.get_by_test_id("workspace-switch")
    assert switch.locator("option:checked").inner_text() == "Acme"
    with browser_page.expect_navigation():
        switch.select_option(str(second.pk))  # no button to press: it submits on change
    assert browser_page.get_by_test_id("workspace-switch").locator("option:checked").inner_text() == "Beta Co"
    assert browser_page.locator("main h1").first.inner_text() == "Beta Co"


def test_one_workspace_shows_its_name_and_no_switcher(browser_page, live_server):
    workspace = WorkspaceFactory(name="Solo")
    MembershipFactory(workspace=workspace, user=UserFactory(username="sam"))
    login(browser_page, live_server, "sam")
    assert browser_page.get_by_test_id("workspace-name").inner_text() == "Solo"
    assert browser_page.get_by_test_id("workspace-switcher").count() == 0
    assert browser_page.get_by_test_id("new-workspace").count() == 0  # not staff


def test_staff_create_a_workspace_with_its_first_admin(browser_page, live_server):
    home = WorkspaceFactory(name="Ops")
    staff = UserFactory(username="stella", is_staff=True)
    MembershipFactory(workspace=home, user=staff, role=Membership.Role.ADMIN)
    dana = UserFactory(username="dana")
    login(browser_page, live_server, "stella")
    with browser_page.expect_navigation():
        browser_page.get_by_test_id("new-workspace").click()
    browser_page.fill("#id_name", "Northwind")
    browser_page.fill("#id_admin_username", "nobody")
    browser_page.click("[data-testid=create-workspace]")
    browser_page.get_by_test_id("error-admin_username").wait_for()
    assert not Workspace.objects.filter(name="Northwind").exists()
    browser_page.fill("#id_admin_username", "dana")
    with browser_page.expect_navigation():
        browser_page.click("[data-testid=create-workspace]")
    assert "Workspace Northwind created with dana as its admin." in browser_page.content()
    created = Workspace.objects.get(name="Northwind")
    assert Membership.objects.get(workspace=created).user == dana
    assert Membership.objects.get(workspace=created).role == Membership.Role.ADMIN


def test_only_staff_may_create_workspaces(client, db):
    user = UserFactory(username="eve")
    MembershipFactory(workspace=WorkspaceFactory(), user=user, role=Membership.Role.ADMIN)
    client.force_login(user)
    assert client.get("/workspaces/new/").status_code == 403
    assert client.post("/workspaces/new/", {"name": "X", "admin_username": "eve", "default_country": "US"}
                       ).status_code == 403
    assert not Workspace.objects.filter(name="X").exists()
