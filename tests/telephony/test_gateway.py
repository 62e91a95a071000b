"""Every gateway function against the Twilio sandbox over loopback, and the error mapping."""
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

from devtools.twilio_sandbox import TEST_NUMBER_BUYS, TEST_NUMBER_INVALID, TEST_NUMBER_UNAVAILABLE
from telephony import errors
from telephony import twilio_gateway as gw


@pytest.fixture
def creds(sandbox_account):
    return sandbox_account[1]


@pytest.fixture
def sandbox(sandbox_account):
    return sandbox_account[0]


# ---------------------------------------------------------------------------
# Accounts


def test_account_fetch(sandbox, creds):
    account = gw.account_fetch(creds=creds)
    assert account.sid == creds.account_sid
    assert account.status == "active"
    assert account.friendly_name == "Test account"
    assert account.type == "Full"
    assert sandbox.requests[-1][:2] == ("GET", f"/2010-04-01/Accounts/{creds.account_sid}.json")


def test_account_fetch_shows_suspension(sandbox, creds):
    sandbox.set_account_status(creds.account_sid, "suspended")
    assert gw.account_fetch(creds=creds).status == "suspended"


def test_subaccount_create_and_find(sandbox, creds):
    sub = gw.subaccount_create(parent=creds, friendly_name="Workspace 7")
    assert sub.sid.startswith("AC") and len(sub.sid) == 34 and sub.sid != creds.account_sid
    assert sub.auth_token and sub.friendly_name == "Workspace 7"
    assert sandbox.state["accounts"][sub.sid]["owner_account_sid"] == creds.account_sid

    found = gw.subaccount_find(parent=creds, friendly_name="Workspace 7")
    assert found == sub and found.auth_token == sub.auth_token
    assert gw.subaccount_find(parent=creds, friendly_name="Nobody") is None

    # The sub-account's own credentials work, and the parent may act on its resources.
    assert gw.account_fetch(creds=gw.Credentials(sub.sid, sub.auth_token)).owner_account_sid == creds.account_sid
    resp = requests.get(f"{sandbox.base_url}/2010-04-01/Accounts/{sub.sid}/IncomingPhoneNumbers.json",
                        auth=(creds.account_sid, creds.auth_token), timeout=5)
    assert resp.status_code == 200 and resp.json()["incoming_phone_numbers"] == []
    # ...but not the other way round.
    resp = requests.get(f"{sandbox.base_url}/2010-04-01/Accounts/{creds.account_sid}/IncomingPhoneNumbers.json",
                        auth=(sub.sid, sub.auth_token), timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == 20003


def test_subaccount_cannot_reach_another_account(sandbox, creds):
    other_sid, other_token = sandbox.add_account()
    with pytest.raises(errors.TwilioAuthError):
        gw.application_find(creds=gw.Credentials(other_sid, creds.auth_token), friendly_name="x")


# ---------------------------------------------------------------------------
# API keys and TwiML apps


def test_api_key_create_exists_delete(sandbox, creds):
    key = gw.api_key_create(creds=creds, friendly_name="browser dialer")
    assert key.sid.startswith("SK") and key.secret
    assert "secret" not in repr(key) and key.secret not in repr(key)
    assert gw.api_key_exists(creds=creds, key_sid=key.sid) is True

    # The new key authenticates against the sandbox like on Twilio.
    resp = requests.get(f"{sandbox.base_url}/2010-04-01/Accounts/{creds.account_sid}.json", auth=(key.sid, key.secret),
                        timeout=5)
    assert resp.status_code == 200 and "secret" not in resp.json()

    gw.api_key_delete(creds=creds, key_sid=key.sid)
    assert gw.api_key_exists(creds=creds, key_sid=key.sid) is False
    gw.api_key_delete(creds=creds, key_sid=key.sid)  # already gone counts as deleted


def test_application_create_find_fetch_update(sandbox, creds):
    app = gw.application_create(creds=creds, friendly_name="Callwell dialer", voice_url="https://app.example/voice",
                                status_callback="https://app.example/status")
    assert app.sid.startswith("AP")
    assert (app.voice_url, app.voice_method, app.status_callback) == (
        "https://app.example/voice", "POST", "https://app.example/status")
    _, _, params = sandbox.requests_to(r"/Applications\.json$", method="POST")[-1]
    assert params["StatusCallbackMethod"] == "POST" and params["VoiceMethod"] == "POST"

    assert gw.application_find(creds=creds, friendly_name="Callwell dialer") == app
    assert gw.application_find(creds=creds, friendly_name="other") is None
    assert gw.application_fetch(creds=creds, app_sid=app.sid) == app
    assert gw.application_fetch(creds=creds, app_sid="AP" + "0" * 32) is None

    updated = gw.application_update(creds=creds, app_sid=app.sid, voice_url="https://new.example/voice")
    assert updated.voice_url == "https://new.example/voice"
    assert sandbox.state["applications"][creds.account_sid][app.sid]["voice_url"] == "https://new.example/voice"


# ---------------------------------------------------------------------------
# Numbers


def test_available_numbers_search_area_code_and_contains(sandbox, creds):
    found = gw.available_numbers_search(creds=creds, country="US", area_code="512", limit=5)
    assert len(found) == 5
    assert all(n.phone_number.startswith("+1512") for n in found)
    assert {(n.locality, n.region, n.iso_country) for n in found} == {("Austin", "TX", "US")}
    assert found[0].capabilities["voice"] is True
    assert found == gw.available_numbers_search(creds=creds, country="US", area_code="512", limit=5)  # deterministic

    with_digits = gw.available_numbers_search(creds=creds, country="US", area_code="512", contains="4242", limit=3)
    assert len(with_digits) == 3 and all("4242" in n.phone_number for n in with_digits)

    canada = gw.available_numbers_search(creds=creds, country="CA", area_code="416", limit=2)
    assert [n.locality for n in canada] == ["Toronto", "Toronto"] and canada[0].region == "ON"
    _, _, params = sandbox.requests_to(r"AvailablePhoneNumbers/CA/Local\.json")[-1]
    assert params["AreaCode"] == "416" and params["VoiceEnabled"] == "true" and params["PageSize"] == "2"


def test_purchase_list_fetch_update_release(sandbox, creds):
    offered = gw.available_numbers_search(creds=creds, country="US", area_code="415", limit=2)
    app = gw.application_create(creds=creds, friendly_name="a", voice_url="https://e/v")
    number = gw.incoming_number_purchase(creds=creds, phone_number=offered[0].phone_number,
                                         voice_application_sid=app.sid, friendly_name="Sales line")
    assert number.sid.startswith("PN") and number.phone_number == offered[0].phone_number
    assert number.voice_application_sid == app.sid and number.friendly_name == "Sales line"

    # A bought number is not offered again, nor buyable twice.
    again = gw.available_numbers_search(creds=creds, country="US", area_code="415", limit=2)
    assert offered[0].phone_number not in {n.phone_number for n in again}
    with pytest.raises(errors.NumberUnavailable):
        gw.incoming_number_purchase(creds=creds, phone_number=offered[0].phone_number)

    assert [n.sid for n in gw.incoming_numbers_list(creds=creds)] == [number.sid]
    assert [n.sid for n in gw.incoming_numbers_list(creds=creds, phone_number=number.phone_number)] == [number.sid]
    assert gw.incoming_numbers_list(creds=creds, phone_number="+14155550000") == []
    assert gw.incoming_number_fetch(creds=creds, number_sid=number.sid) == number

    pointed = gw.incoming_number_update(creds=creds, number_sid=number.sid, voice_url="https://e/inbound",
                                        voice_method="POST", voice_application_sid="")
    assert (pointed.voice_url, pointed.voice_method, pointed.voice_application_sid) == ("https://e/inbound", "POST", None)

    gw.incoming_number_release(creds=creds, number_sid=number.sid)
    assert sandbox.state["incoming_numbers"][creds.account_sid] == {}
    gw.incoming_number_release(creds=creds, number_sid=number.sid)  # already released: no error
    with pytest.raises(errors.TwilioNotFound):
        gw.incoming_number_fetch(creds=creds, number_sid=number.sid)


def test_incoming_numbers_list_and_sandbox_paging(sandbox, creds):
    for i in range(55):
        sandbox.add_incoming_number(creds.account_sid, f"+1512555{i:04d}")
    assert len(gw.incoming_numbers_list(creds=creds)) == 55
    assert len(gw.incoming_numbers_list(creds=creds, limit=20)) == 20

    # Twilio's paging envelope: relative next_page_uri until the last page.
    auth = (creds.account_sid, creds.auth_token)
    url = f"{sandbox.base_url}/2010-04-01/Accounts/{creds.account_sid}/IncomingPhoneNumbers.json?PageSize=50"
    first = requests.get(url, auth=auth, timeout=5).json()
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 50, 0, 49)
    assert len(first["incoming_phone_numbers"]) == 50 and first["previous_page_uri"] is None
    second = requests.get(sandbox.base_url + first["next_page_uri"], auth=auth, timeout=5).json()
    assert len(second["incoming_phone_numbers"]) == 5 and second["next_page_uri"] is None
    assert second["page"] == 1


def test_test_numbers(sandbox, creds):
    bought = gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_BUYS)
    assert bought.phone_number == TEST_NUMBER_BUYS

    with pytest.raises(errors.NumberUnavailable) as unavailable:
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_UNAVAILABLE)
    assert unavailable.value.code == 21422 and unavailable.value.permanent and not unavailable.value.transient
    assert unavailable.value.status == 400
    assert "is not available" in unavailable.value.message and "Unable to" not in unavailable.value.message

    with pytest.raises(errors.InvalidPhoneNumber) as invalid:
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_INVALID)
    assert invalid.value.code == 21421 and invalid.value.permanent
    assert invalid.value.display().endswith("(Twilio error 21421)")

    # A number no search offered (and not in the sandbox's inventory) is not available.
    with pytest.raises(errors.NumberUnavailable):
        gw.incoming_number_purchase(creds=creds, phone_number="+15125550123")
    assert len(sandbox.state["incoming_numbers"][creds.account_sid]) == 1


# ---------------------------------------------------------------------------
# Caller IDs


def test_caller_id_validation_then_list_and_delete(sandbox, creds):
    validation = gw.caller_id_validation_request(creds=creds, phone_number="+15125550111", friendly_name="Alice cell",
                                                 status_callback="http://127.0.0.1:9/cb")
    assert re.fullmatch(r"\d{6}", validation.validation_code)
    assert validation.phone_number == "+15125550111" and validation.call_sid.startswith("CA")
    _, path, params = sandbox.requests[-1]
    assert path == f"/2010-04-01/Accounts/{creds.account_sid}/OutgoingCallerIds.json"
    assert params["StatusCallback"] == "http://127.0.0.1:9/cb"
    assert gw.outgoing_caller_ids_list(creds=creds) == []

    sid = sandbox.complete_validation(creds.account_sid, "+15125550111")
    listed = gw.outgoing_caller_ids_list(creds=creds)
    assert [(c.sid, c.phone_number, c.friendly_name) for c in listed] == [(sid, "+15125550111", "Alice cell")]
    assert gw.outgoing_caller_ids_list(creds=creds, phone_number="+15125550999") == []
    assert sandbox.callbacks[-1]["params"]["VerificationStatus"] == "success"

    with pytest.raises(errors.TwilioPermanentError) as already:
        gw.caller_id_validation_request(creds=creds, phone_number="+15125550111")
    assert already.value.code == 21450

    gw.outgoing_caller_id_delete(creds=creds, caller_id_sid=sid)
    assert gw.outgoing_caller_ids_list(creds=creds) == []
    gw.outgoing_caller_id_delete(creds=creds, caller_id_sid=sid)  # gone already: no error


def test_caller_id_validation_auto_complete(sandbox, creds):
    from tests.conditions import eventually

    sandbox.auto_complete_validations = True
    gw.caller_id_validation_request(creds=creds, phone_number="+14155550123")
    eventually(lambda: gw.outgoing_caller_ids_list(creds=creds))
    assert [c.phone_number for c in gw.outgoing_caller_ids_list(creds=creds)] == ["+14155550123"]


# ---------------------------------------------------------------------------
# Calls, recordings, alerts


def test_call_update_twiml_and_hangup(sandbox, creds):
    call_sid = sandbox.add_call(creds.account_sid, to="+15125550100", from_="+15125550199")
    info = gw.call_update(creds=creds, call_sid=call_sid, twiml="<Response><Say>Hold on</Say></Response>")
    assert info == gw.CallInfo(sid=call_sid, status="in-progress")
    assert sandbox.call_twiml(creds.account_sid, call_sid) == "<Response><Say>Hold on</Say></Response>"

    assert gw.call_update(creds=creds, call_sid=call_sid, status="completed").status == "completed"
    assert sandbox.state["calls"][creds.account_sid][call_sid]["status"] == "completed"
    with pytest.raises(errors.TwilioPermanentError) as ended:
        gw.call_update(creds=creds, call_sid=call_sid, twiml="<Response/>")
    assert ended.value.code == 21220
    with pytest.raises(errors.TwilioNotFound):
        gw.call_update(creds=creds, call_sid="CA" + "f" * 32, status="completed")


def test_recording_start_media_delete(sandbox, creds):
    call_sid = sandbox.add_call(creds.account_sid)
    rec = gw.call_recording_start(creds=creds, call_sid=call_sid, status_callback="https://app.example/rec")
    assert rec.sid.startswith("RE") and rec.call_sid == call_sid
    assert (rec.status, rec.channels) == ("in-progress", 2)
    _, _, params = sandbox.requests_to(r"/Recordings\.json$", method="POST")[-1]
    assert params["RecordingStatusCallbackEvent"] == ["in-progress", "completed", "absent"]
    assert params["RecordingChannels"] == "dual"

    with pytest.raises(errors.TwilioNotFound):  # no media before the recording completed
        gw.recording_media(creds=creds, recording_sid=rec.sid)
    sandbox.complete_recording(creds.account_sid, rec.sid, duration=12, send_callback=False)
    media = gw.recording_media(creds=creds, recording_sid=rec.sid)
    assert media.status_code == 200 and media.headers["Content-Type"] == "audio/mpeg"
    assert media.content.startswith(b"ID3")

    gw.recording_delete(creds=creds, recording_sid=rec.sid)
    assert sandbox.state["recordings"][creds.account_sid] == {}
    gw.recording_delete(creds=creds, recording_sid=rec.sid)  # gone already
    with pytest.raises(errors.TwilioNotFound):
        gw.recording_media(creds=creds, recording_sid=rec.sid)
    with pytest.raises(errors.TwilioAuthError):
        gw.recording_media(creds=gw.Credentials(creds.account_sid, "wrong-token"), recording_sid=rec.sid)


def test_alerts_list(sandbox, creds):
    now = datetime.now(timezone.utc)
    sandbox.add_alert(creds.account_sid, 11200, "HTTP retrieval failure", resource_sid="CA" + "1" * 32,
                      date_created=now - timedelta(minutes=5))
    sandbox.add_alert(creds.account_sid, 13227, "Old", date_created=now - timedelta(days=2))
    other_sid, _ = sandbox.add_account()
    sandbox.add_alert(other_sid, 11200, "someone else's")

    alerts = gw.alerts_list(creds=creds, since=now - timedelta(hours=1))
    assert [(a.error_code, a.alert_text, a.resource_sid) for a in alerts] == [
        ("11200", "HTTP retrieval failure", "CA" + "1" * 32)]
    assert alerts[0].date_created.tzinfo is not None
    assert alerts[0].more_info == "https://www.twilio.com/docs/errors/11200"
    assert len(gw.alerts_list(creds=creds)) == 2
    assert sandbox.requests[-1][1] == "/v1/Alerts"


def test_alerts_since_is_sent_in_utc(sandbox, creds):
    berlin = timezone(timedelta(hours=1))
    gw.alerts_list(creds=creds, since=datetime(2026, 1, 1, 12, 0, tzinfo=berlin))
    assert sandbox.requests[-1][2]["StartDate"] == "2026-01-01T11:00:00Z"


# ---------------------------------------------------------------------------
# Error mapping


def test_wrong_token_is_permanent_auth_error(sandbox, creds):
    with pytest.raises(errors.TwilioAuthError) as caught:
        gw.account_fetch(creds=gw.Credentials(creds.account_sid, "0" * 32))
    assert caught.value.code == 20003 and caught.value.status == 401
    assert caught.value.permanent and not caught.value.transient and not caught.value.ambiguous


def test_unknown_account_is_auth_error(sandbox):
    with pytest.raises(errors.TwilioAuthError):
        gw.account_fetch(creds=gw.Credentials("AC" + "9" * 32, "x" * 32))


def test_missing_credentials_never_reach_twilio(sandbox):
    with pytest.raises(errors.TwilioNotConfigured):
        gw.account_fetch(creds=gw.Credentials("", ""))
    assert sandbox.requests == []


def test_404_is_permanent_not_found(sandbox, creds):
    with pytest.raises(errors.TwilioNotFound) as caught:
        gw.incoming_number_fetch(creds=creds, number_sid="PN" + "0" * 32)
    assert caught.value.code == 20404 and caught.value.permanent


@pytest.mark.parametrize("kind, status, code", [("429", 429, 20429), ("500", 500, 20500), ("503", 503, 20500)])
def test_429_and_5xx_are_transient(sandbox, creds, kind, status, code):
    sandbox.inject_fault("GET", r"IncomingPhoneNumbers", kind=kind)
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.incoming_numbers_list(creds=creds)
    assert caught.value.status == status and caught.value.code == code
    assert caught.value.transient and not caught.value.ambiguous  # a GET is never ambiguous
    assert gw.incoming_numbers_list(creds=creds) == []  # times=1: the next call goes through


def test_429_on_purchase_did_not_buy(sandbox, creds):
    sandbox.inject_fault("POST", r"IncomingPhoneNumbers", kind="429")
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_BUYS)
    assert caught.value.code == 20429
    assert sandbox.state["incoming_numbers"][creds.account_sid] == {}


def test_500_on_post_is_ambiguous(sandbox, creds):
    sandbox.inject_fault("POST", r"Applications", kind="500")
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.application_create(creds=creds, friendly_name="a", voice_url="https://e/v")
    assert caught.value.ambiguous


def test_slow_answer_is_transient_timeout_and_ambiguous_for_post(sandbox, creds, settings):
    settings.TWILIO_READ_TIMEOUT = 0.3
    gw.reset_http_client()
    sandbox.inject_fault("POST", r"IncomingPhoneNumbers", kind="slow", delay=1.5)
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_BUYS)
    assert caught.value.transient and caught.value.ambiguous
    assert "in time" in caught.value.message
    # The sandbox carried the purchase out: the caller must look before buying again.
    assert [n.phone_number for n in gw.incoming_numbers_list(creds=creds, phone_number=TEST_NUMBER_BUYS)] == [
        TEST_NUMBER_BUYS]


def test_slow_get_is_transient_not_ambiguous(sandbox, creds, settings):
    settings.TWILIO_READ_TIMEOUT = 0.3
    gw.reset_http_client()
    sandbox.inject_fault("GET", r"Accounts/AC[^/]+\.json", kind="slow", delay=1.0)
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.account_fetch(creds=creds)
    assert caught.value.transient and not caught.value.ambiguous


@pytest.mark.parametrize("after_action", [True, False])
def test_dropped_connection_is_transient(sandbox, creds, after_action):
    sandbox.inject_fault("POST", r"IncomingPhoneNumbers", kind="drop", after_action=after_action)
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_BUYS)
    assert caught.value.transient and caught.value.ambiguous
    bought = gw.incoming_numbers_list(creds=creds)
    assert len(bought) == (1 if after_action else 0)


def test_connection_refused_is_transient_and_not_ambiguous(settings, creds, sandbox):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    gw.reset_http_client()
    with pytest.raises(errors.TwilioTransientError) as caught:
        gw.account_fetch(creds=creds)
    assert not caught.value.ambiguous
    with pytest.raises(errors.TwilioTransientError) as caught:  # a POST that never left is safe to retry
        gw.incoming_number_purchase(creds=creds, phone_number=TEST_NUMBER_BUYS)
    assert caught.value.transient and not caught.value.ambiguous


def test_fault_injection_counts_and_patterns(sandbox, creds):
    sandbox.inject_fault("GET", r"Applications", kind="500", times=2)
    for _ in range(2):
        with pytest.raises(errors.TwilioTransientError):
            gw.application_find(creds=creds, friendly_name="x")
    assert gw.application_find(creds=creds, friendly_name="x") is None
    gw.account_fetch(creds=creds)  # other paths never matched
