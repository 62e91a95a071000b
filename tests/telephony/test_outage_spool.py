"""Issue 22.10: a caller during a PostgreSQL outage hears the apology and is noted in the web server's local
spool; once the database answers again, the first webhook records the call (MissedCall, in the workspace its
Twilio account belongs to). The outage half runs on real uvicorn against a PostgreSQL that does not answer."""
import http.client
import json
import os
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from telephony import spool
from telephony.models import MissedCall
from tests.factories import TwilioConnectionFactory

DEAD_POSTGRES = "postgres://postgres@127.0.0.1:1/callwell_down"
CALL = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "a" * 32, "From": "+15125550111", "To": "+15125550199",
        "CallStatus": "ringing", "Direction": "inbound"}


def _post(base: str, path: str, params: dict) -> tuple[int, str]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", path, body=urlencode(params), headers={
        "Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "c2lnbmVk"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs REDIS_URL (a real Redis) to take PostgreSQL down alone")
    return url


@pytest.mark.django_db
def test_a_call_during_a_database_outage_hears_the_apology_and_is_recorded_once_the_database_is_back(
        tmp_path, redis_url, settings, workspace):
    from bench._harness import bench_env, serve

    spool_dir = tmp_path / "spool"
    env = bench_env(DJANGO_SETTINGS_MODULE="config.settings.production", DATABASE_URL=DEAD_POSTGRES,
                    REDIS_URL=redis_url, OUTAGE_SPOOL_DIR=str(spool_dir), DB_POOL_MAX_SIZE=0)
    with serve(env=env, workers=1, server="uvicorn", migrate=False) as base:
        for path in ("/v1/voice/inbound/1", "/v1/agents/some-connector/twilio-config"):
            status, body = _post(base, path, CALL)
            assert status == 200 and "<Say" in body and "<Hangup" in body, body[:300]
    lines = [json.loads(line) for line in (spool_dir / spool.SPOOL_NAME).read_text().splitlines()]
    assert [(e["path"], e["call_sid"], e["from_number"]) for e in lines] == [
        ("/v1/voice/inbound/1", CALL["CallSid"], "+15125550111"),
        ("/v1/agents/some-connector/twilio-config", CALL["CallSid"], "+15125550111")]

    # The database is back: the next webhook (any) records the noted calls, then the spool is empty.
    settings.OUTAGE_SPOOL_DIR = str(spool_dir)
    connection = TwilioConnectionFactory(workspace=workspace, account_sid=CALL["AccountSid"])
    path = f"/v1/voice/status/{workspace.pk}"
    params = {**CALL, "CallSid": "CA" + "8" * 32, "CallStatus": "completed"}
    signature = RequestValidator(connection.auth_token).compute_signature(settings.PUBLIC_BASE_URL + path, params)
    response = Client().post(path, urlencode(params), content_type="application/x-www-form-urlencoded",
                             HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 204
    missed = list(MissedCall.objects.order_by("path"))
    assert [(m.path, m.call_sid, m.from_number, m.workspace_id, m.signature_checked) for m in missed] == [
        ("/v1/agents/some-connector/twilio-config", CALL["CallSid"], "+15125550111", workspace.pk, False),
        ("/v1/voice/inbound/1", CALL["CallSid"], "+15125550111", workspace.pk, False)]
    assert not spool.spool_pending()
    # Draining again records nothing twice.
    assert spool.spool_drain() == 0 and MissedCall.objects.count() == 2
