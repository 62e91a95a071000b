import pytest

pytestmark = pytest.mark.django_db


def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_pages_need_login(client):
    response = client.get("/settings/dialer/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_member_gets_403_on_settings(member_client):
    assert member_client.get("/settings/dialer/").status_code == 403


def test_admin_sees_settings_with_connect_banner(admin_client):
    response = admin_client.get("/settings/dialer/")
    assert response.status_code == 200
    assert "Connect your phone system" in response.content.decode()


def test_switch_to_foreign_workspace_is_404(admin_client, other_workspace):
    response = admin_client.post("/workspaces/switch/", {"workspace_id": other_workspace.pk})
    assert response.status_code == 404
