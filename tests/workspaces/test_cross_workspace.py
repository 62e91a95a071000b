"""Workspaces views: a user of workspace A never sees or switches into workspace B (URL, form field, query, session)."""
import pytest

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.middleware import SESSION_KEY
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


def test_home_shows_only_the_users_workspace(admin_client, workspace, other_workspace):
    html = admin_client.get("/").content.decode()
    assert workspace.name in html
    assert other_workspace.name not in html


def test_switch_by_form_field_to_foreign_workspace_is_404_and_changes_nothing(admin_client, workspace, other_workspace):
    assert admin_client.post("/workspaces/switch/", {"workspace_id": other_workspace.pk}).status_code == 404
    assert admin_client.session[SESSION_KEY] == workspace.pk
    assert other_workspace.name not in admin_client.get("/").content.decode()


def test_switch_by_query_parameter_is_refused(admin_client, other_workspace):
    assert admin_client.get(f"/workspaces/switch/?workspace_id={other_workspace.pk}").status_code == 405
    assert admin_client.post(f"/workspaces/switch/?workspace_id={other_workspace.pk}").status_code == 404


def test_switch_with_garbage_is_404(admin_client):
    assert admin_client.post("/workspaces/switch/", {"workspace_id": "x"}).status_code == 404


def test_a_tampered_session_falls_back_to_the_users_own_workspace(admin_client, workspace, other_workspace):
    session = admin_client.session
    session[SESSION_KEY] = other_workspace.pk
    session.save()
    html = admin_client.get("/").content.decode()
    assert workspace.name in html and other_workspace.name not in html
    assert admin_client.session[SESSION_KEY] == workspace.pk


def test_member_of_two_workspaces_switches_between_them(client, workspace):
    second = WorkspaceFactory(name="Second Co")
    user = UserFactory(username="carol")
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.MEMBER)
    MembershipFactory(workspace=second, user=user, role=Membership.Role.ADMIN)
    client.force_login(user)
    response = client.post("/workspaces/switch/", {"workspace_id": second.pk})
    assert response.status_code == 302
    assert f'<option value="{second.pk}" selected>Second Co<' in client.get("/").content.decode()  # the switcher
    # Admin in Second Co: settings are open; member in Acme: 403 after switching back.
    assert client.get("/settings/dialer/").status_code == 200
    client.post("/workspaces/switch/", {"workspace_id": workspace.pk})
    assert client.get("/settings/dialer/").status_code == 403


def test_other_workspace_admin_cannot_see_our_settings_data(other_client, workspace):
    from tests.factories import TwilioConnectionFactory

    ours = TwilioConnectionFactory(workspace=workspace)
    html = other_client.get("/settings/dialer/").content.decode()
    assert ours.account_sid not in html
    assert "Connect your phone system" in html  # they see their own (empty) state


def test_user_without_membership_gets_403(client):
    client.force_login(UserFactory(username="loner"))
    assert client.get("/").status_code == 403
    assert client.get("/settings/dialer/").status_code == 403


def test_workspace_admins_are_not_django_admin_staff(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_logout_then_pages_need_login(admin_client):
    assert admin_client.post("/logout/").status_code == 302
    response = admin_client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_healthz_is_public_and_trivial(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


def test_login_with_wrong_password_shows_an_error(client, admin_user):
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
