"""Logging is structured JSON, and no secret reaches a log line; SIDs (which ops need) do."""
import io
import json
import logging

import pytest
from django.conf import settings
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from config.logging import REDACTED, JsonFormatter, RedactSecretsFilter, redact_text

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
KEY_SECRET = "Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4C"
ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
KEY_SID = "SK" + "0a1b2c3d4e5f6789" * 2
CALL_SID = "CA" + "1234567890abcdef" * 2
BASIC = "QUNmZWRjYmE5ODc2NTQzMjEwOjAxMjM0NTY3ODlhYmNkZWY="  # base64("AC...:token")


def jwt() -> str:
    token = AccessToken(ACCOUNT_SID, KEY_SID, KEY_SECRET, identity="user-1", ttl=3600)
    token.add_grant(VoiceGrant(outgoing_application_sid="AP" + "0" * 32))
    return token.to_jwt()


@pytest.fixture
def json_log():
    """The REAL configured console handler (settings.LOGGING), writing into a buffer for the test."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(old_stream)


def lines(buffer) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_settings_wire_the_redaction_filter_and_json_formatter():
    handler = settings.LOGGING["handlers"]["console"]
    assert handler["filters"] == ["redact"]
    assert settings.LOGGING["filters"]["redact"]["()"] == "config.logging.RedactSecretsFilter"
    assert settings.LOGGING["formatters"]["json"]["()"] == "config.logging.JsonFormatter"
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False  # workers use the same handler


def test_no_secret_in_any_log_line(json_log):
    token_jwt = jwt()
    log = logging.getLogger("callwell.test")
    log.warning("creating subaccount with auth_token=%s", AUTH_TOKEN)
    log.warning("twilio said %s", json.dumps({"sid": KEY_SID, "secret": KEY_SECRET}))
    log.warning("request headers", extra={"headers": {"Authorization": f"Basic {BASIC}", "Accept": "json"}})
    log.warning("outgoing: Authorization: Basic %s", BASIC)
    log.info("voice token issued", extra={"token": token_jwt, "api_key_secret": KEY_SECRET, "auth_token": AUTH_TOKEN})
    log.info("token in text %s", token_jwt)
    log.info("GET https://%s:%s@api.twilio.com/2010-04-01/Accounts.json", ACCOUNT_SID, AUTH_TOKEN)
    log.info("bare values %s %s", AUTH_TOKEN, KEY_SECRET, extra={"values": [AUTH_TOKEN, KEY_SECRET]})
    log.info("a request", extra={"request": f"<WSGIRequest: GET '/cb?AuthToken={AUTH_TOKEN}'>"})
    try:
        raise RuntimeError(f"Twilio refused auth_token {AUTH_TOKEN} / secret: {KEY_SECRET}")
    except RuntimeError:
        log.exception("gateway failed")

    output = json_log.getvalue()
    records = lines(json_log)
    assert len(records) == 10  # one JSON object per line
    for secret in (AUTH_TOKEN, KEY_SECRET, BASIC, token_jwt, token_jwt.split(".")[1]):
        assert secret not in output
    assert REDACTED in output
    assert records[-1]["level"] == "ERROR" and "RuntimeError" in records[-1]["exc"]


def test_sids_phone_numbers_and_flags_are_kept(json_log):
    log = logging.getLogger("callwell.test")
    log.warning(
        "twilio webhook rejected for %s call %s from +15125550100", ACCOUNT_SID, CALL_SID,
        extra={"api_key_sid": KEY_SID, "has_signature": True, "workspace_id": 7, "status_code": 403,
               "token_ttl": 3600, "posted_account": ACCOUNT_SID},
    )
    (record,) = lines(json_log)
    assert record["msg"] == f"twilio webhook rejected for {ACCOUNT_SID} call {CALL_SID} from +15125550100"
    assert record["api_key_sid"] == KEY_SID
    assert record["has_signature"] is True
    assert record["workspace_id"] == 7 and record["token_ttl"] == 3600
    assert record["posted_account"] == ACCOUNT_SID


@pytest.mark.parametrize(
    "text",
    [
        "basic validation failed for +15125550100",
        "token issued to user 5, ttl 3600",
        "twilio webhook rejected: bad or missing signature",
        "celery task 3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5b succeeded",
        f"number PN{'ab' * 16} bought on {ACCOUNT_SID} (Twilio error 21422)",
    ],
)
def test_ordinary_text_is_not_redacted(text):
    assert redact_text(text) == text


def test_formatter_redacts_even_without_the_filter():
    """A handler someone configures with the formatter but without the filter still prints no secret."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("callwell.test.nofilter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error("auth_token=%s", AUTH_TOKEN, extra={"password": "hunter2-but-longer"})
    finally:
        log.removeHandler(handler)
    assert AUTH_TOKEN not in buffer.getvalue() and "hunter2" not in buffer.getvalue()


def test_filter_survives_a_broken_format_string():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s %s", (AUTH_TOKEN,), None)
    assert RedactSecretsFilter().filter(record) is True
    assert AUTH_TOKEN not in record.msg
