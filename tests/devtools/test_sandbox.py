"""The Twilio sandbox itself, over raw HTTP: shapes, auth, numbers, callbacks, control API, CLI."""
import email.utils
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from django.conf import settings
from twilio.request_validator import RequestValidator

from devtools.twilio_sandbox import SandboxServer

API = "/2010-04-01"


@pytest.fixture
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def account(sandbox):
    sid, token = sandbox.add_account(friendly_name="Acme")
    return sid, token


def _get(sandbox, path, auth, **params):
    return requests.get(sandbox.base_url + path, auth=auth, params=params, timeout=5)


def _post(sandbox, path, auth, **data):
    return requests.post(sandbox.base_url + path, auth=auth, data=data, timeout=5)


def test_error_bodies_are_twilios(sandbox, account):
    sid, token = account
    resp = _get(sandbox, f"{API}/Accounts/{sid}.json", (sid, "wrong"))
    assert resp.status_code == 401
    assert resp.json() == {"code": 20003, "message": "Authenticate",
                           "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    assert _get(sandbox, f"{API}/Accounts/{sid}.json", None).status_code == 401

    missing = _get(sandbox, f"{API}/Accounts/{sid}/IncomingPhoneNumbers/PN{'0' * 32}.json", (sid, token))
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    assert missing.json()["more_info"] == "https://www.twilio.com/docs/errors/20404"


def test_account_shape_and_rfc2822_dates(sandbox, account):
    sid, token = account
    body = _get(sandbox, f"{API}/Accounts/{sid}.json", (sid, token)).json()
    assert body["sid"] == sid and body["auth_token"] == token and body["friendly_name"] == "Acme"
    assert body["uri"] == f"{API}/Accounts/{sid}.json"
    assert body["subresource_uris"]["incoming_phone_numbers"] == f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json"
    assert email.utils.parsedate_to_datetime(body["date_created"]).tzinfo is not None
    assert body["date_created"].endswith("+0000")


def test_suspended_and_closed_accounts(sandbox, account):
    sid, token = account
    sandbox.set_account_status(sid, "suspended")
    assert _get(sandbox, f"{API}/Accounts/{sid}.json", (sid, token)).json()["status"] == "suspended"
    blocked = _get(sandbox, f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json", (sid, token))
    assert blocked.status_code == 401 and blocked.json()["code"] == 20005
    sandbox.set_account_status(sid, "closed")
    assert _get(sandbox, f"{API}/Accounts/{sid}.json", (sid, token)).json()["code"] == 20003


def test_creates_are_201_deletes_204_and_key_secret_only_once(sandbox, account):
    sid, token = account
    created = _post(sandbox, f"{API}/Accounts/{sid}/Keys.json", (sid, token), FriendlyName="k")
    assert created.status_code == 201 and created.json()["secret"]
    key_sid = created.json()["sid"]
    fetched = _get(sandbox, f"{API}/Accounts/{sid}/Keys/{key_sid}.json", (sid, token)).json()
    assert "secret" not in fetched and fetched["friendly_name"] == "k"
    listed = _get(sandbox, f"{API}/Accounts/{sid}/Keys.json", (sid, token)).json()
    assert [k["sid"] for k in listed["keys"]] == [key_sid] and "secret" not in listed["keys"][0]
    deleted = requests.delete(f"{sandbox.base_url}{API}/Accounts/{sid}/Keys/{key_sid}.json", auth=(sid, token), timeout=5)
    assert deleted.status_code == 204 and deleted.content == b""


def test_available_numbers_contains_pagesize_and_sold_numbers(sandbox, account):
    sid, token = account
    path = f"{API}/Accounts/{sid}/AvailablePhoneNumbers/US/Local.json"
    page = _get(sandbox, path, (sid, token), AreaCode="512", PageSize="7").json()
    numbers = page["available_phone_numbers"]
    assert len(numbers) == 7 and page["page_size"] == 7
    assert all(n["phone_number"].startswith("+1512") and n["locality"] == "Austin" and n["region"] == "TX"
               for n in numbers)
    assert numbers[0]["capabilities"]["voice"] is True and numbers[0]["iso_country"] == "US"

    vanity = _get(sandbox, path, (sid, token), AreaCode="512", Contains="CALL", PageSize="4").json()
    assert len(vanity["available_phone_numbers"]) == 4
    assert all("2255" in n["phone_number"] for n in vanity["available_phone_numbers"])
    wildcard = _get(sandbox, path, (sid, token), AreaCode="415", Contains="9*9", PageSize="3").json()
    assert all(n["phone_number"][2:5] == "415" for n in wildcard["available_phone_numbers"])

    bought = _post(sandbox, f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json", (sid, token),
                   PhoneNumber=numbers[0]["phone_number"])
    assert bought.status_code == 201 and bought.json()["sid"].startswith("PN")
    again = _get(sandbox, path, (sid, token), AreaCode="512", PageSize="7").json()["available_phone_numbers"]
    assert numbers[0]["phone_number"] not in [n["phone_number"] for n in again]

    assert _get(sandbox, path, (sid, token), AreaCode="999").json()["available_phone_numbers"] == []
    assert _get(sandbox, f"{API}/Accounts/{sid}/AvailablePhoneNumbers/GB/Local.json", (sid, token)).status_code == 404
    toronto = _get(sandbox, f"{API}/Accounts/{sid}/AvailablePhoneNumbers/CA/Local.json", (sid, token),
                   AreaCode="416", PageSize="1").json()["available_phone_numbers"][0]
    assert (toronto["locality"], toronto["region"], toronto["iso_country"]) == ("Toronto", "ON", "CA")


def test_purchase_rules(sandbox, account):
    sid, token = account
    path = f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json"
    assert _post(sandbox, path, (sid, token), PhoneNumber="+15005550000").json()["code"] == 21422
    assert _post(sandbox, path, (sid, token), PhoneNumber="+15005550001").json()["code"] == 21421
    assert _post(sandbox, path, (sid, token), PhoneNumber="555-1234").json()["code"] == 21421
    assert _post(sandbox, path, (sid, token), PhoneNumber="+15125550123").json()["code"] == 21422  # never offered
    sandbox.add_available_number("+15125550123")
    assert _post(sandbox, path, (sid, token), PhoneNumber="+15125550123").status_code == 201
    by_area = _post(sandbox, path, (sid, token), AreaCode="617")
    assert by_area.status_code == 201 and by_area.json()["phone_number"].startswith("+1617")
    other_sid, other_token = sandbox.add_account()
    taken = _post(sandbox, f"{API}/Accounts/{other_sid}/IncomingPhoneNumbers.json", (other_sid, other_token),
                  PhoneNumber="+15125550123")
    assert taken.status_code == 400 and taken.json()["code"] == 21422


def test_fault_drop_before_action_and_control_api(sandbox, account):
    sid, token = account
    r = requests.post(f"{sandbox.base_url}/_sandbox/faults", data={
        "Method": "POST", "PathPattern": "IncomingPhoneNumbers", "Kind": "drop", "AfterAction": "false"}, timeout=5)
    assert r.status_code == 201
    with pytest.raises(requests.exceptions.ConnectionError):
        _post(sandbox, f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json", (sid, token), PhoneNumber="+15005550006")
    assert sandbox.state["incoming_numbers"][sid] == {}
    assert _post(sandbox, f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json", (sid, token),
                 PhoneNumber="+15005550006").status_code == 201

    limited = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"Method": "GET", "PathPattern": "Keys",
                                                                          "Kind": "429"}, timeout=5)
    assert limited.status_code == 201
    resp = _get(sandbox, f"{API}/Accounts/{sid}/Keys.json", (sid, token))
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1" and resp.json()["code"] == 20429

    created = requests.post(f"{sandbox.base_url}/_sandbox/accounts", data={"FriendlyName": "BYOK"}, timeout=5).json()
    assert _get(sandbox, f"{API}/Accounts/{created['sid']}.json", (created["sid"], created["auth_token"])).ok
    call = requests.post(f"{sandbox.base_url}/_sandbox/calls", data={"AccountSid": sid}, timeout=5).json()
    assert sandbox.state["calls"][sid][call["sid"]]["status"] == "in-progress"
    state = requests.get(f"{sandbox.base_url}/_sandbox/state", timeout=5).json()
    assert created["sid"] in state["accounts"]
    help_ = requests.get(f"{sandbox.base_url}/_sandbox/", timeout=5).json()
    assert "POST /_sandbox/faults" in help_["endpoints"]
    assert requests.post(f"{sandbox.base_url}/_sandbox/reset", timeout=5).ok
    assert sandbox.state["accounts"] == {}
    assert all(not path.startswith("/_sandbox") for _, path, _ in sandbox.requests)


class _Receiver:
    """A tiny HTTP server that records the callbacks the sandbox sends."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                received.append((self.path, {k: v[0] for k, v in parse_qs(body).items()},
                                 self.headers.get("X-Twilio-Signature")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_validation_and_recording_callbacks_are_signed(sandbox, account):
    sid, token = account
    receiver = _Receiver()
    try:
        callback = f"{receiver.url}/caller-ids/status"
        body = _post(sandbox, f"{API}/Accounts/{sid}/OutgoingCallerIds.json", (sid, token), PhoneNumber="+15125550111",
                     StatusCallback=callback)
        assert body.status_code == 200
        assert set(body.json()) == {"account_sid", "call_sid", "friendly_name", "phone_number", "validation_code"}
        caller_id_sid = sandbox.complete_validation(sid, "+15125550111")
        path, params, signature = receiver.received[-1]
        assert params["VerificationStatus"] == "success" and params["OutgoingCallerIdSid"] == caller_id_sid
        assert RequestValidator(token).validate(callback, params, signature)
        assert not RequestValidator("another-token").validate(callback, params, signature)

        call_sid = sandbox.add_call(sid)
        rec = _post(sandbox, f"{API}/Accounts/{sid}/Calls/{call_sid}/Recordings.json", (sid, token),
                    RecordingStatusCallback=f"{receiver.url}/rec", RecordingChannels="mono").json()
        assert rec["channels"] == 1 and rec["status"] == "in-progress"
        sandbox.complete_recording(sid, rec["sid"], duration=7)
        _, params, signature = receiver.received[-1]
        assert params["RecordingStatus"] == "completed" and params["RecordingDuration"] == "7"
        assert RequestValidator(token).validate(f"{receiver.url}/rec", params, signature)
        wav = _get(sandbox, f"{API}/Accounts/{sid}/Recordings/{rec['sid']}.wav", (sid, token))
        assert wav.headers["Content-Type"] == "audio/x-wav" and wav.content.startswith(b"RIFF")
    finally:
        receiver.close()


def test_cli_prints_parent_and_serves_byok_accounts():
    byok_sid, byok_token = "AC" + "1" * 32, "byok-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.twilio_sandbox", "--port", "0", "--account", f"{byok_sid}:{byok_token}"],
        cwd=str(Path(settings.BASE_DIR)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        base_url = lines[0].split(" on ")[1].split()[0]
        parent_sid = next(line for line in lines if "TWILIO_PARENT_ACCOUNT_SID=" in line).split("=")[1].strip()
        parent_token = next(line for line in lines if "TWILIO_PARENT_AUTH_TOKEN=" in line).split("=")[1].strip()
        assert requests.get(f"{base_url}{API}/Accounts/{parent_sid}.json", auth=(parent_sid, parent_token),
                            timeout=5).ok
        assert requests.get(f"{base_url}{API}/Accounts/{byok_sid}.json", auth=(byok_sid, byok_token), timeout=5).ok
        assert requests.get(f"{base_url}{API}/Accounts/{byok_sid}.json", auth=(byok_sid, "nope"),
                            timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_racing_purchases_of_one_number_buy_it_once(sandbox, account):
    from concurrent.futures import ThreadPoolExecutor

    sid, token = account
    sandbox.add_available_number("+15125550177")
    path = f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json"
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: _post(sandbox, path, (sid, token), PhoneNumber="+15125550177").status_code,
                                   range(8)))
    assert statuses == [201] + [400] * 7
    assert len(sandbox.state["incoming_numbers"][sid]) == 1
