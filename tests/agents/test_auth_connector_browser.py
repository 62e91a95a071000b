"""The auth connector form shows only the fields of the chosen type."""
import pytest

from tests.agents.factories import EnvironmentFactory
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.fixtures_browser import login
from workspaces.models import Membership

pytestmark = [pytest.mark.browser]


def test_each_auth_type_shows_its_own_fields(browser_page, live_server):
    workspace = WorkspaceFactory(name="Acme")
    MembershipFactory(workspace=workspace, user=UserFactory(username="ann"), role=Membership.Role.ADMIN)
    EnvironmentFactory(workspace=workspace, kind="production")
    page = browser_page
    login(page, live_server, "ann")
    page.goto(live_server.url + "/studio/environments/production/")

    def shown():
        return {name for name in ("header_name", "username", "token_url", "client_id", "scope")
                if page.locator(f"[name=auth-{name}]").is_visible()}

    page.select_option("[name=auth-kind]", "bearer")
    assert shown() == set()
    page.select_option("[name=auth-kind]", "api_key_header")
    assert shown() == {"header_name"}
    page.select_option("[name=auth-kind]", "basic")
    assert shown() == {"username"}
    page.select_option("[name=auth-kind]", "oauth2_client_credentials")
    assert shown() == {"token_url", "client_id", "scope"}
    assert page.locator("[name=auth-secret]").is_visible()
