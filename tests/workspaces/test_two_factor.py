"""Two-factor sign-in (django-otp): enrolment with a TOTP app, the code step after the password, recovery
codes that work once, workspaces that require it for every member, and staff in production."""
import re
from base64 import b32decode

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice

from tests.factories import UserFactory
from workspaces.models import AuthenticatorDevice as TOTPDevice  # the key is stored encrypted (issue 22.8)

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def password_login(client, username, next_url="/"):
    response = client.post("/login/", {"username": username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302, response.content[:500]
    return response


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset_steps):06d}"


def enrol(client) -> tuple[TOTPDevice, list[str]]:
    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    device = TOTPDevice.objects.get(confirmed=False)
    assert b32decode(secret) == device.bin_key  # the secret shown is the device's key, for manual entry
    assert "<svg" in html  # the QR code, inline SVG
    response = client.post(reverse("two_factor_setup"), {"device_id": device.pk, "token": code_for(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    device.refresh_from_db()
    return device, codes


def test_enrolment_confirms_the_device_and_shows_recovery_codes_once(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    device, codes = enrol(client)
    assert device.confirmed
    assert len(codes) == 10
    # Shown once: the page afterwards shows only how many are left, not the codes.
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "10 recovery codes left" in page
    assert not any(code in page for code in codes)


def test_a_wrong_enrolment_code_leaves_two_factor_off(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    client.get(reverse("two_factor_setup"))
    device = TOTPDevice.objects.get()
    response = client.post(reverse("two_factor_setup"), {"device_id": device.pk, "token": "000000" if code_for(device) != "000000" else "111111"})
    assert b"does not match" in response.content
    device.refresh_from_db()
    assert not device.confirmed


def test_login_with_a_device_asks_for_the_code_before_anything_else(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    device, _ = enrol(client)
    client.post(reverse("logout"))

    response = password_login(client, "bob", next_url="/calls/")
    assert client.get("/calls/").url.startswith(reverse("two_factor_verify"))
    assert client.get("/").status_code == 302
    response = client.post(reverse("two_factor_verify"), {"token": "12345x", "next": "/calls/"})
    assert b"not valid" in response.content
    device.refresh_from_db()
    device.throttling_failure_count = 0  # the wrong guess above throttles the next try for a second
    device.throttling_failure_timestamp = None
    device.last_t = -1
    device.save()
    response = client.post(reverse("two_factor_verify"), {"token": code_for(device), "next": "/calls/"})
    assert response.status_code == 302 and response.url == "/calls/"
    assert client.get("/").status_code == 200


def test_a_recovery_code_signs_in_once(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    _, codes = enrol(client)
    client.post(reverse("logout"))

    password_login(client, "bob")
    response = client.post(reverse("two_factor_verify"), {"token": codes[0]})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post(reverse("logout"))

    password_login(client, "bob")
    response = client.post(reverse("two_factor_verify"), {"token": codes[0]})
    assert response.status_code == 200 and b"not valid" in response.content
    assert client.get("/").status_code == 302


def test_a_workspace_that_requires_two_factor_sends_a_member_to_enrolment(workspace, member_user, admin_user):
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post(reverse("workspace_security"), {"require_two_factor": "on"})
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert workspace.require_two_factor

    client = Client()
    password_login(client, "bob")
    response = client.get("/calls/")
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))
    assert b"requires two-factor sign-in" in client.get(response.url).content
    enrol(client)
    assert client.get("/").status_code == 200


def test_members_cannot_change_the_workspace_requirement(workspace, member_client):
    assert member_client.post(reverse("workspace_security"), {"require_two_factor": "on"}).status_code == 403


def test_without_the_requirement_a_member_without_a_device_signs_in_with_the_password(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    assert client.get("/").status_code == 200


@override_settings(OTP_REQUIRED_FOR_STAFF=True)
def test_staff_need_two_factor_for_admin_when_required():
    UserFactory(username="ops", is_staff=True, is_superuser=True)
    client = Client()
    password_login(client, "ops", next_url="/admin/")
    response = client.get("/admin/")
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))
    enrol(client)
    assert client.get("/admin/").status_code == 200


def test_production_settings_require_two_factor_for_staff():
    source = (__import__("pathlib").Path(__file__).resolve().parents[2] / "config/settings/production.py").read_text()
    assert re.search(r'^OTP_REQUIRED_FOR_STAFF = env\.bool\("OTP_REQUIRED_FOR_STAFF", default=True\)', source, re.M)


def test_enrolment_cannot_be_used_to_skip_the_code_step(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    enrol(client)
    client.post(reverse("logout"))
    password_login(client, "bob")
    response = client.get(reverse("two_factor_setup"))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_verify"))
    assert client.post(reverse("two_factor_setup"), {"action": "regenerate"}).status_code == 302



def test_an_htmx_request_is_sent_to_the_code_step_as_a_whole_page(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    enrol(client)
    client.post(reverse("logout"))
    password_login(client, "bob")
    response = client.get("/calls/", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Redirect"].startswith(reverse("two_factor_verify"))


def test_a_device_removed_by_an_admin_no_longer_asks_for_a_code(workspace, member_user):
    client = Client()
    password_login(client, "bob")
    enrol(client)
    client.post(reverse("logout"))
    password_login(client, "bob")
    TOTPDevice.objects.filter(user=member_user).delete()  # lost phone: ops removed it in Django admin
    StaticDevice.objects.filter(user=member_user).delete()
    response = client.get("/")
    assert response.url.startswith(reverse("two_factor_verify"))
    assert client.get(response.url).status_code == 302
    assert client.get("/").status_code == 200
