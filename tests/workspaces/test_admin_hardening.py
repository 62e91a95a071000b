"""Issue 22 point 8: Django admin shows no second-factor secret (no TOTP key, no recovery code, no QR code), lets
nobody re-key a device, keeps what Twilio and Callwell made read-only (a connection's workspace, mode and TwiML
app; a number's workspace, SID and number; a connector's workspace), offers no "Add" on machine-made rows, and
says "Call analyses"."""
import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from calls.models import CallAnalysis, CallSession
from dialer.models import Call
from telephony.models import NumberPurchase
from tests.agents.factories import PhoneConnectorFactory, published_agent
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory, UserFactory
from webhooks.models import WebhookAttempt, WebhookEvent
from workspaces.models import AuthenticatorDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops():
    client = Client()
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    return client


def _change_page(ops, obj) -> str:
    opts = obj._meta
    response = ops.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _editable(html: str, field: str) -> bool:
    return f'name="{field}"' in html


def test_the_totp_device_page_shows_no_key_and_cannot_re_key(ops):
    user = UserFactory(username="bob")
    device = AuthenticatorDevice.objects.create(user=user, name="phone", confirmed=True)
    html = _change_page(ops, device)
    assert device.key not in html and device.key.upper() not in html
    assert not _editable(html, "key") and not _editable(html, "digits") and not _editable(html, "step")
    assert ops.get(reverse("admin:workspaces_authenticatordevice_add")).status_code == 403
    # django-otp's own TOTP admin (its table is emptied by the migration) is as safe.
    old = TOTPDevice.objects.create(user=user, name="old", confirmed=True)
    html = _change_page(ops, old)
    assert old.key not in html and not _editable(html, "key")
    assert ops.get(reverse("admin:otp_totp_totpdevice_config", args=[old.pk])).status_code == 403
    assert ops.get(reverse("admin:otp_totp_totpdevice_qrcode", args=[old.pk])).status_code == 403
    assert ops.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403
    listing = ops.get(reverse("admin:otp_totp_totpdevice_changelist")).content.decode()
    assert "qrcode" not in listing.lower()


def test_the_static_device_page_shows_no_recovery_code(ops):
    user = UserFactory(username="bob")
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    codes = [device.token_set.create(token=f"rc{i}x7k2q9z").token for i in range(10)]
    html = _change_page(ops, device)
    assert not any(code in html for code in codes)
    assert ops.get(reverse("admin:otp_static_staticdevice_add")).status_code == 403


def test_a_twilio_connection_keeps_its_workspace_mode_and_twiml_app(ops, workspace):
    connection = TwilioConnectionFactory(workspace=workspace, twiml_app_sid="AP" + "1" * 32)
    html = _change_page(ops, connection)
    for field in ("workspace", "mode", "twiml_app_sid"):
        assert not _editable(html, field), field
    assert "AP" + "1" * 32 in html  # shown, not editable


def test_a_phone_number_keeps_its_workspace_sid_and_number(ops, workspace):
    number = PhoneNumberFactory(workspace=workspace)
    html = _change_page(ops, number)
    for field in ("workspace", "sid", "phone_number"):
        assert not _editable(html, field), field


def test_a_connector_keeps_its_workspace(ops, workspace):
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    html = _change_page(ops, connector)
    assert not _editable(html, "workspace")
    assert _editable(html, "name")


@pytest.mark.parametrize("model", [NumberPurchase, Call, CallSession, WebhookEvent, WebhookAttempt])
def test_no_add_on_machine_made_rows(ops, model):
    opts = model._meta
    assert ops.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    listing = ops.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).content.decode()
    assert reverse(f"admin:{opts.app_label}_{opts.model_name}_add") not in listing


def test_call_analyses_is_spelled_right(ops):
    assert str(CallAnalysis._meta.verbose_name_plural) == "call analyses"
    assert "Call analysiss" not in ops.get(reverse("admin:index")).content.decode()
    assert admin.site.is_registered(CallAnalysis)
