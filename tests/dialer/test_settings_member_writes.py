"""Settings → Dialer writes are admin-only: a member's POST to each one is 403 and reaches neither the database
nor Twilio (the GET pages are covered in test_settings_views)."""
import pytest

from telephony.models import TwilioConnection

pytestmark = pytest.mark.django_db

SETTINGS = "/settings/dialer/"


@pytest.mark.parametrize("path, data", [
    ("byok/", {"account_sid": "AC" + "a" * 32, "auth_token": "b" * 32}),
    ("hosted/", {}),
    ("check/", {}),
    ("local-presence/", {"enabled": "on"}),
    ("numbers/provision/", {"phone_number": "+15125550123"}),
    ("caller-ids/add/", {"phone_number": "+15125550123"}),
    ("caller-ids/check/", {}),
])
def test_member_posts_to_settings_are_403_and_change_nothing(member_client, workspace, twilio_sandbox, path, data):
    response = member_client.post(SETTINGS + path, data)
    assert response.status_code == 403
    assert not TwilioConnection.objects.filter(workspace=workspace).exists()
    assert not twilio_sandbox.requests
