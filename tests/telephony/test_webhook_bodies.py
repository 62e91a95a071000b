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


@pytest.mark.django_db(transaction=True)
def test_on_uvicorn_an_unreadable_body_is_400_with_nothing_written(workspace, settings):
    """The same on the README's server (ASGI reads the body its own way): real uvicorn, production settings, the
    test's PostgreSQL database and REDIS_URL."""
    import http.client
    import os
    from urllib.parse import urlsplit

    from django.db import connection

    from bench._harness import bench_env, serve

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    TwilioConnectionFactory(workspace=workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace))
    db = connection.settings_dict
    env = bench_env(DJANGO_SETTINGS_MODULE="config.settings.production", REDIS_URL=os.environ["REDIS_URL"],
                    DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
                    FIELD_ENCRYPTION_KEY=",".join(settings.FIELD_ENCRYPTION_KEY)
                    if isinstance(settings.FIELD_ENCRYPTION_KEY, (list, tuple)) else settings.FIELD_ENCRYPTION_KEY)
    urls = [reverse("dialer:inbound", args=[workspace.pk]), reverse("connectors:twilio_config",
                                                                     args=[connector.identifier])]
    before = _row_counts()
    with serve(env=env, workers=1, server="uvicorn", migrate=False) as base:
        parts = urlsplit(base)
        for kind, (body, content_type) in _bodies().items():
            for url in urls:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                conn.request("POST", url + ("?bodySHA256=" + "0" * 64 if kind.endswith("JSON") else ""), body=body,
                             headers={"Host": "127.0.0.1", "Content-Type": content_type,
                                      "X-Twilio-Signature": FAKE_SIGNATURE})
                response = conn.getresponse()
                answer = response.read()
                conn.close()
                assert response.status in (400, 403), (kind, url, response.status, answer[:200])
                assert b"<Say" not in answer
    connector.refresh_from_db()
    assert connector.alert_text == "" and _row_counts() == before
