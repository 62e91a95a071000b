"""Issue 22 point 3: a body nobody can read (malformed multipart, over DATA_UPLOAD_MAX_MEMORY_SIZE, too many
fields) with a fake signature is refused before anything is written, on every Twilio webhook URL: no 200, no
spoken apology, no connector alert, no row."""
import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.agents.factories import PhoneConnectorFactory, published_agent
from tests.factories import TwilioConnectionFactory

pytestmark = pytest.mark.django_db

FAKE_SIGNATURE = "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="
MALFORMED_MULTIPART = (b"--\r\nContent-Disposition: xy\r\n\r\n", "multipart/form-data; boundary=")
assert len(MALFORMED_MULTIPART[0]) == 31

DIALER_WEBHOOKS = ["outbound", "inbound", "status", "leg_status", "dial_done", "voicemail_done", "recording_status"]
CONNECTOR_WEBHOOKS = ["twilio_config", "relay_handover", "dial_result", "recording_status"]


@pytest.fixture
def urls(workspace):
    TwilioConnectionFactory(workspace=workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    found = [reverse(f"dialer:{name}", args=[workspace.pk]) for name in DIALER_WEBHOOKS]
    found += [reverse(f"connectors:{name}", args=[connector.identifier]) for name in CONNECTOR_WEBHOOKS]
    assert len(set(found)) == 11
    return connector, found


def _bodies():
    too_big = b"Note=" + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    too_many = "&".join(f"F{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)).encode()
    form = "application/x-www-form-urlencoded"
    return {"malformed multipart (31 bytes)": MALFORMED_MULTIPART, "over 2.5 MB": (too_big, form),
            "too many fields": (too_many, form),
            "over 2.5 MB, signed as JSON": (b'{"a": "' + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}',
                                             "application/json")}


def _row_counts() -> dict:
    return {model._meta.label: model.objects.count() for name in ("dialer", "calls", "connectors", "telephony",
                                                                  "webhooks", "agents")
            for model in apps.get_app_config(name).get_models()}


@pytest.mark.parametrize("kind", list(_bodies()))
def test_an_unreadable_body_with_a_fake_signature_is_refused_before_anything_is_written(urls, kind):
    connector, found = urls
    body, content_type = _bodies()[kind]
    before = _row_counts()
    client = Client(raise_request_exception=False)
    for url in found:
        if kind.endswith("JSON"):
            url += "?bodySHA256=" + "0" * 64
        response = client.generic("POST", url, body, content_type=content_type,
                                  HTTP_X_TWILIO_SIGNATURE=FAKE_SIGNATURE)
        assert response.status_code in (400, 403), (url, response.status_code, response.content[:200])
        assert b"<Say" not in response.content, url
    connector.refresh_from_db()
    assert connector.alert_text == "" and connector.alert_at is None
    assert _row_counts() == before


def test_a_readable_body_with_a_fake_signature_is_still_403(urls):
    connector, found = urls
    client = Client()
    for url in found:
        response = client.post(url, {"CallSid": "CA" + "1" * 32}, HTTP_X_TWILIO_SIGNATURE=FAKE_SIGNATURE)
        assert response.status_code == 403, url
