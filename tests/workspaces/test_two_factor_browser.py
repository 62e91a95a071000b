"""Two-factor sign-in in chromium: enrol with the secret shown (as an authenticator app would), see the
recovery codes, log out, log in again through the code step."""
from base64 import b32decode

import pytest
from django_otp.oath import totp

from tests.fixtures_browser import login
from workspaces.models import AuthenticatorDevice as TOTPDevice  # the key is stored encrypted (issue 22.8)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code(secret: str, drift: int = 0) -> str:
    return f"{totp(b32decode(secret), drift=drift):06d}"


def test_enrol_then_sign_in_with_a_code(browser_page, live_server, workspace, member_user):
    page = browser_page
    login(page, live_server, "bob")
    page.goto(live_server.url + "/account/two-factor/")
    assert page.get_by_test_id("totp-qr").locator("svg").is_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    page.fill("#id_token", code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    codes = page.get_by_test_id("recovery-codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    assert TOTPDevice.objects.get(user=member_user).confirmed

    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "pw-for-tests")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "/login/verify/" in page.url  # the password step passed; the code step follows
    page.goto(live_server.url + "/studio/calls/")
    assert "/login/verify/" in page.url
    page.fill("#id_token", code(secret, drift=1))  # the next step's code: the one used to enrol is spent
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    assert page.url.endswith("/studio/calls/")
    assert page.get_by_test_id("workspace-name").is_visible()
    assert page.console_errors == []
