"""`dialer.webhook_security.twilio_webhook`: every view Twilio calls checks X-Twilio-Signature (always) and AccountSid."""
import hashlib
import json
import logging

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from twilio.request_validator import RequestValidator

from telephony.models import TwilioConnection
from telephony.webhook_security import twilio_webhook
from tests.factories import TwilioConnectionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def resolve(request, workspace_id):
    return TwilioConnection.objects.filter(workspace_id=workspace_id).first()


@twilio_webhook(resolve)
def hook(request, workspace_id):
    return HttpResponse(f"ok {request.twilio_connection.account_sid}", content_type="text/plain")


urlpatterns = [path("twilio/test/<int:workspace_id>/voice", hook)]
BASE = "https://calls.example.test"  # PUBLIC_BASE_URL in config.settings.test


@pytest.fixture
def conn(workspace):
    return TwilioConnectionFactory(workspace=workspace)


@pytest.fixture
def other_conn(other_workspace):
    return TwilioConnectionFactory(workspace=other_workspace)


def sign(token: str, url: str, params=None) -> str:
    return RequestValidator(token).compute_signature(url, params or {})


def hook_path(conn) -> str:
    return f"/twilio/test/{conn.workspace_id}/voice"


def form(conn, **extra) -> dict:
    return {"CallSid": "CA" + "1" * 32, "AccountSid": conn.account_sid, "From": "+15125550100", "To": "+15125550199",
            **extra}


def post(client, conn, params, signature=None, url_path=None, **headers):
    if signature is not None:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return client.post(url_path or hook_path(conn), params, **headers)


# --- what passes -----------------------------------------------------------------------------------

def test_valid_post_passes(client, conn):
    params = form(conn)
    response = post(client, conn, params, sign(conn.auth_token, BASE + hook_path(conn), params))
    assert response.status_code == 200
    assert response.content.decode() == f"ok {conn.account_sid}"


def test_a_signature_over_the_url_with_its_default_port_passes(client, conn):
    """Twilio sometimes signs https://host:443/…: the library's with/without-port rule still applies."""
    params = form(conn)
    url = BASE.replace("calls.example.test", "calls.example.test:443") + hook_path(conn)
    assert post(client, conn, params, sign(conn.auth_token, url, params)).status_code == 200


def test_valid_get_with_query_passes(client, conn):
    url_path = hook_path(conn) + f"?CallSid=CA{'2' * 32}&AccountSid={conn.account_sid}&Digits=1"
    response = client.get(url_path, HTTP_X_TWILIO_SIGNATURE=sign(conn.auth_token, BASE + url_path))
    assert response.status_code == 200


def test_csrf_does_not_block_a_signed_post(conn):
    client = Client(enforce_csrf_checks=True)
    params = form(conn)
    assert post(client, conn, params, sign(conn.auth_token, BASE + hook_path(conn), params)).status_code == 200


def test_json_body_with_body_sha256_passes_and_a_changed_body_fails(client, conn):
    body = json.dumps({"AccountSid": conn.account_sid, "event": "call.completed"})
    url_path = hook_path(conn) + "?bodySHA256=" + hashlib.sha256(body.encode()).hexdigest()
    signature = sign(conn.auth_token, BASE + url_path)
    ok = client.post(url_path, body, content_type="application/json", HTTP_X_TWILIO_SIGNATURE=signature)
    assert ok.status_code == 200
    tampered = body.replace("completed", "failed")
    bad = client.post(url_path, tampered, content_type="application/json", HTTP_X_TWILIO_SIGNATURE=signature)
    assert bad.status_code == 403


def test_non_standard_port_in_public_base_url(client, conn, settings):
    settings.PUBLIC_BASE_URL = "https://calls.example.test:8443"
    params = form(conn)
    good = sign(conn.auth_token, "https://calls.example.test:8443" + hook_path(conn), params)
    assert post(client, conn, params, good).status_code == 200
    wrong_port = sign(conn.auth_token, "https://calls.example.test:9443" + hook_path(conn), params)
    assert post(client, conn, params, wrong_port).status_code == 403


def test_trusted_proxy_headers_rebuild_the_url(client, conn, settings):
    settings.TWILIO_TRUST_PROXY_HEADERS = True
    params = form(conn)
    signature = sign(conn.auth_token, "https://hooks.example.org" + hook_path(conn), params)
    response = post(client, conn, params, signature, HTTP_X_FORWARDED_PROTO="https",
                    HTTP_X_FORWARDED_HOST="hooks.example.org")
    assert response.status_code == 200


def test_proxy_headers_are_ignored_unless_trusted(client, conn, settings):
    settings.TWILIO_TRUST_PROXY_HEADERS = False
    params = form(conn)
    signature = sign(conn.auth_token, "https://attacker.example.org" + hook_path(conn), params)
    response = post(client, conn, params, signature, HTTP_X_FORWARDED_PROTO="https",
                    HTTP_X_FORWARDED_HOST="attacker.example.org")
    assert response.status_code == 403


# --- what is refused -------------------------------------------------------------------------------

def test_missing_signature_is_403(client, conn):
    assert post(client, conn, form(conn)).status_code == 403
    assert client.get(hook_path(conn)).status_code == 403


def test_changed_parameter_is_403(client, conn):
    params = form(conn)
    signature = sign(conn.auth_token, BASE + hook_path(conn), params)
    assert post(client, conn, {**params, "To": "+19005550100"}, signature).status_code == 403
    assert post(client, conn, {**params, "Extra": "1"}, signature).status_code == 403


def test_changed_query_parameter_on_get_is_403(client, conn):
    url_path = hook_path(conn) + "?Digits=1"
    signature = sign(conn.auth_token, BASE + url_path)
    assert client.get(hook_path(conn) + "?Digits=9", HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403


def test_another_workspaces_token_is_403(client, conn, other_conn):
    params = form(conn)
    signature = sign(other_conn.auth_token, BASE + hook_path(conn), params)
    assert post(client, conn, params, signature).status_code == 403


def test_replaying_another_workspaces_signed_request_is_403(client, conn, other_conn):
    params = form(other_conn)
    signature = sign(other_conn.auth_token, BASE + hook_path(other_conn), params)
    assert post(client, other_conn, params, signature).status_code == 200  # valid where it belongs
    assert post(client, conn, params, signature).status_code == 403  # not on our URL


def test_http_instead_of_https_is_403(client, conn):
    params = form(conn)
    signature = sign(conn.auth_token, "http://calls.example.test" + hook_path(conn), params)
    assert post(client, conn, params, signature).status_code == 403


def test_https_signature_fails_when_public_url_is_http(client, conn, settings):
    settings.PUBLIC_BASE_URL = "http://calls.example.test"
    params = form(conn)
    signature = sign(conn.auth_token, "https://calls.example.test" + hook_path(conn), params)
    assert post(client, conn, params, signature).status_code == 403


def test_account_sid_of_another_account_is_403(client, conn, other_conn):
    params = form(conn, AccountSid=other_conn.account_sid)
    signature = sign(conn.auth_token, BASE + hook_path(conn), params)  # correctly signed, wrong account
    response = post(client, conn, params, signature)
    assert response.status_code == 403
    assert b"another Twilio account" in response.content


def test_unknown_webhook_is_404(client, conn):
    url_path = "/twilio/test/999999/voice"
    params = form(conn)
    assert post(client, conn, params, sign(conn.auth_token, BASE + url_path, params), url_path=url_path).status_code == 404


def test_signature_is_checked_in_debug_too(client, conn, settings):
    settings.DEBUG = True
    assert post(client, conn, form(conn), "not-a-signature").status_code == 403


def test_rejection_is_logged_without_secrets(client, conn, caplog):
    params = form(conn)
    bad_signature = sign("f" * 32, BASE + hook_path(conn), params)
    with caplog.at_level(logging.WARNING, logger="telephony.webhook_security"):
        assert post(client, conn, params, bad_signature).status_code == 403
    (record,) = [r for r in caplog.records if r.name == "telephony.webhook_security"]
    text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
    assert conn.auth_token not in text
    assert bad_signature not in text
    assert record.workspace_id == conn.workspace_id
