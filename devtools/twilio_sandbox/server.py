"""A stateful stand-in for Twilio's REST API (2010-04-01 and Monitor v1), for tests and offline runs.

Standard library only. `SandboxServer().start()` serves on 127.0.0.1 in a
background thread; point `TWILIO_API_BASE_URL` at `server.base_url` and the
gateway talks to it (the gateway rewrites every *.twilio.com host to it).
See docs/twilio-sandbox.md.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from devtools.twilio_sandbox import numbers

API = "2010-04-01"
TEST_NUMBER_BUYS = "+15005550006"
TEST_NUMBER_UNAVAILABLE = "+15005550000"
TEST_NUMBER_INVALID = "+15005550001"

RESOURCES = ("accounts", "keys", "applications", "incoming_numbers", "outgoing_caller_ids",
             "validation_requests", "calls", "recordings", "alerts", "conferences")

# Keys kept in state records that Twilio's JSON does not have (never rendered).
_PRIVATE = {"secret", "twiml", "twiml_history", "updates", "deleted", "status_callback_url", "params"}

MP3_BYTES = (b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 413) * 4


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _rfc2822(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _parse_iso(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"):
        try:
            dt = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return None


def _bool(value, default=False) -> bool:
    if value is None:
        return default
    return str(value).lower() in ("true", "1", "yes")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict:
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}", "status": self.status}


def _not_found(path: str) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path} was not found")


def _missing(name: str) -> ApiError:
    return ApiError(400, 21604 if name in ("To", "From") else 20001, f"Missing required parameter {name} in the post body")


@dataclass
class Fault:
    method: str | None
    path_pattern: re.Pattern
    kind: str  # "429", "500" (or any HTTP status), "slow", "drop"
    times: int | None
    delay: float
    after_action: bool

    def matches(self, method: str, path: str, query: str = "") -> bool:
        """`path_pattern` is searched in the path, then in path?query.

        So a pattern ending in `.json$` also matches list requests that carry a query string.
        """
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method not in ("*", method):
            return False
        return bool(self.path_pattern.search(path) or (query and self.path_pattern.search(f"{path}?{query}")))


@dataclass
class Result:
    status: int
    body: object = None  # dict -> JSON; bytes -> raw
    content_type: str = "application/json"
    headers: dict | None = None


# ---------------------------------------------------------------------------


class SandboxServer:
    """The sandbox. Python API for tests; the same controls are served over HTTP under /_sandbox/."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, auto_complete_validations: bool = False,
                 callback_timeout: float = 5.0):
        self.host, self.port = host, port
        self.auto_complete_validations = auto_complete_validations
        self.callback_timeout = callback_timeout
        self.dial_outbound = True  # Calls.json with a Url is answered (devtools/twilio_sandbox/outbound.py)
        self.transfer_talk_seconds = 0.3  # an accepting person in a conference talks this long (conference.py)
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._signalling = None  # signalling.SignallingServer, started on first use of `signalling`
        self.reset()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> "SandboxServer":
        sandbox = self

        class Handler(_Handler):
            pass

        Handler.sandbox = sandbox
        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"twilio-sandbox:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._signalling is not None:
            self._signalling.stop()
            self._signalling = None
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def signalling(self):
        """The Voice SDK's signalling server (signalling.py; TLS websocket on its own port), started on first use.

        `signalling.host` is the Device's `chunderw` value."""
        with self.lock:
            if self._signalling is None:
                from devtools.twilio_sandbox.signalling import SignallingServer

                self._signalling = SignallingServer(self, self.host, self.signalling_port).start()
            return self._signalling

    signalling_port = 0  # the CLI fixes it (--signalling-port)

    def reset(self) -> None:
        """Forget every account, resource, fault and logged request."""
        with self.lock:
            self.state: dict[str, dict] = {"accounts": {}}
            for name in RESOURCES[1:]:
                self.state[name] = defaultdict(dict)
            self.requests: list[tuple[str, str, dict]] = []
            self.callbacks: list[dict] = []  # status callbacks the sandbox sent (url, params, status or error)
            self.faults: list[Fault] = []
            self.offered: set[str] = set()  # numbers an AvailablePhoneNumbers search returned
            self.extra_available: set[str] = set()
            self.simulated: dict = {}  # CallSid -> phone.SimulatedCall placed by simulate_call
            self.outbound_scripts: dict = {}  # To -> what the person answering an outbound call says (outbound.py)

    # -- seeding ------------------------------------------------------------

    def add_account(self, sid: str | None = None, auth_token: str | None = None, status: str = "active",
                    friendly_name: str = "", *, type: str = "Full", owner_account_sid: str | None = None
                    ) -> tuple[str, str]:
        """An account the sandbox accepts (a parent for Hosted mode, or a customer's own for BYOK)."""
        sid = sid or _sid("AC")
        auth_token = auth_token or secrets.token_hex(16)
        now = _now()
        with self.lock:
            self.state["accounts"][sid] = {
                "sid": sid, "auth_token": auth_token, "friendly_name": friendly_name or f"{sid} account",
                "status": status, "type": type, "owner_account_sid": owner_account_sid or sid,
                "date_created": now, "date_updated": now,
            }
        return sid, auth_token

    def set_account_status(self, account_sid: str, status: str) -> None:
        with self.lock:
            self.state["accounts"][account_sid]["status"] = status

    def add_available_number(self, phone_number: str) -> None:
        """Make a number buyable even if no search offered it."""
        with self.lock:
            self.extra_available.add(phone_number)

    def add_incoming_number(self, account_sid: str, phone_number: str, **fields) -> str:
        """A number the account already owns."""
        with self.lock:
            return self._create_number(account_sid, phone_number, fields)["sid"]

    def add_outgoing_caller_id(self, account_sid: str, phone_number: str, friendly_name: str = "") -> str:
        with self.lock:
            return self._create_caller_id(account_sid, phone_number, friendly_name)["sid"]

    def add_call(self, account_sid: str, call_sid: str | None = None, **fields) -> str:
        """A live call (status in-progress unless given), e.g. one a webhook test pretends Twilio is running."""
        call_sid = call_sid or _sid("CA")
        now = _now()
        record = {
            "sid": call_sid, "account_sid": account_sid, "parent_call_sid": None, "to": "+15125550100",
            "from": "+15125550199", "status": "in-progress", "direction": "inbound", "date_created": now,
            "date_updated": now, "start_time": now, "end_time": None, "duration": None, "price": None,
            "price_unit": "USD", "answered_by": None, "api_version": API, "forwarded_from": None,
            "group_sid": None, "caller_name": None, "queue_time": "0", "trunk_sid": None,
            "phone_number_sid": None, "twiml": None, "twiml_history": [], "updates": [],
        }
        for key, value in fields.items():
            record[key.rstrip("_")] = value  # from_="+1..." works too
        with self.lock:
            self.state["calls"][account_sid][call_sid] = record
        return call_sid

    def add_recording(self, account_sid: str, call_sid: str, recording_sid: str | None = None, **fields) -> str:
        recording_sid = recording_sid or _sid("RE")
        with self.lock:
            record = self._new_recording(account_sid, call_sid, recording_sid, channels=2, source="DialVerb",
                                         status="completed")
            record.update(duration="42")
            record.update(fields)
        return recording_sid

    def complete_recording(self, account_sid: str, recording_sid: str, duration: int = 42,
                           send_callback: bool = True) -> dict:
        """Mark a recording completed; POST its status callback (signed) if it has one."""
        with self.lock:
            rec = self.state["recordings"][account_sid][recording_sid]
            rec.update(status="completed", duration=str(duration), date_updated=_now())
            callback = rec.get("status_callback_url")
            token = self._token(account_sid)
            params = {"AccountSid": account_sid, "CallSid": rec["call_sid"], "RecordingSid": recording_sid,
                      "RecordingUrl": f"https://api.twilio.com/{API}/Accounts/{account_sid}/Recordings/{recording_sid}",
                      "RecordingStatus": "completed", "RecordingDuration": str(duration),
                      "RecordingChannels": str(rec["channels"]), "RecordingSource": rec["source"],
                      "RecordingStartTime": _rfc2822(rec["start_time"])}
        if callback and send_callback:
            self._send_callback(callback, params, token)
        return rec

    def add_alert(self, account_sid: str, error_code: str | int, alert_text: str = "", *, log_level: str = "error",
                  resource_sid: str | None = None, date_created: datetime | None = None, more_info: str | None = None,
                  request_url: str | None = None, request_method: str | None = None, sid: str | None = None) -> str:
        sid = sid or _sid("NO")
        created = date_created or _now()
        with self.lock:
            self.state["alerts"][account_sid][sid] = {
                "sid": sid, "account_sid": account_sid, "alert_text": alert_text, "api_version": API,
                "date_created": created, "date_generated": created, "date_updated": created,
                "error_code": str(error_code), "log_level": log_level,
                "more_info": more_info or f"https://www.twilio.com/docs/errors/{error_code}",
                "request_method": request_method, "request_url": request_url, "resource_sid": resource_sid,
                "service_sid": None,
            }
        return sid

    def complete_validation(self, account_sid: str, phone_number: str, *, success: bool = True,
                            send_callback: bool = True) -> str | None:
        """The person answered the verification call and typed the code: the number becomes a caller ID.

        Returns the new OutgoingCallerId SID (None when `success=False`). Sends the
        validation's StatusCallback (signed with the account's token) if it had one.
        """
        with self.lock:
            pending = self.state["validation_requests"][account_sid].get(phone_number)
            if pending is None:
                raise KeyError(f"no validation request for {phone_number} on {account_sid}")
            pending["status"] = "success" if success else "failed"
            caller_id_sid = None
            if success:
                caller_id_sid = self._create_caller_id(account_sid, phone_number, pending["friendly_name"])["sid"]
            callback, token = pending.get("status_callback_url"), self._token(account_sid)
            params = {"AccountSid": account_sid, "CallSid": pending["call_sid"], "PhoneNumber": phone_number,
                      "VerificationStatus": pending["status"]}
            if caller_id_sid:
                params["OutgoingCallerIdSid"] = caller_id_sid
        if callback and send_callback:
            self._send_callback(callback, params, token)
        return caller_id_sid

    # -- faults and inspection ---------------------------------------------

    def inject_fault(self, method: str | None = "POST", path_pattern: str = r".", kind: str = "500", times: int | None = 1,
                     delay: float = 3.0, after_action: bool = True) -> Fault:
        """Make the next `times` matching requests fail (times=None: until `clear_faults`).

        kind: "429" (Twilio's 20429 body and Retry-After), "500" or any other HTTP status,
        "slow" (answer after `delay` seconds), "drop" (close the socket without answering).
        For "slow" and "drop", `after_action` says whether the request is carried out first.
        """
        kind = str(kind)
        if kind not in ("slow", "drop") and not kind.isdigit():
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(method=method.upper() if method else None, path_pattern=re.compile(path_pattern), kind=kind,
                      times=times, delay=float(delay), after_action=after_action)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[tuple[str, str, dict]]:
        """The logged requests whose path matches (re.search)."""
        regex = re.compile(path_pattern)
        with self.lock:
            return [r for r in self.requests if regex.search(r[1]) and (method is None or r[0] == method)]

    def simulate_call(self, account_sid: str, to: str, *, from_: str = "+15005550006", say: str = "",
                      dial_outcome: str = "completed", wait: bool = False, timeout: float = 90.0,
                      script=None, **options):
        """Place an inbound call to one of the account's numbers, as Twilio would (`phone.SimulatedCall`).

        Runs in its own thread; `wait=True` returns once the call has ended."""
        from devtools.twilio_sandbox.phone import DEFAULT_SAY
        from devtools.twilio_sandbox.signalling import RingingCall  # a SimulatedCall that can ring a browser

        call = RingingCall(sandbox=self, account_sid=account_sid, to=to, from_=from_, say=say or DEFAULT_SAY,
                           dial_outcome=dial_outcome, script=script, **options)
        with self.lock:
            self.simulated[call.call_sid] = call
        call.start()
        if wait:
            call.done.wait(timeout)
        return call

    def call_twiml(self, account_sid: str, call_sid: str) -> str | None:
        """The last TwiML a call was redirected to (call update with Twiml=)."""
        with self.lock:
            return self.state["calls"][account_sid][call_sid].get("twiml")

    def snapshot(self) -> dict:
        """The state as JSON-ready data (for /_sandbox/state)."""
        with self.lock:
            return json.loads(json.dumps(self.state, default=_json_default))

    # -- internals: helpers -------------------------------------------------

    def _token(self, account_sid: str) -> str:
        return self.state["accounts"].get(account_sid, {}).get("auth_token", "")

    def _send_callback(self, url: str, params: dict, auth_token: str) -> None:
        from twilio.request_validator import RequestValidator  # signing only; no REST client here

        signature = RequestValidator(auth_token).compute_signature(url, params)
        data = urlencode(params).encode()
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1 (sandbox)"})
        entry = {"url": url, "params": params}
        try:
            with urllib.request.urlopen(req, timeout=self.callback_timeout) as resp:
                entry["status"] = resp.status
        except urllib.error.HTTPError as exc:
            entry["status"] = exc.code
        except Exception as exc:  # noqa: BLE001 - recorded for the test to see
            entry["error"] = repr(exc)
        with self.lock:
            self.callbacks.append(entry)

    def _number_owner(self, phone_number: str) -> str | None:
        for account_sid, items in self.state["incoming_numbers"].items():
            for rec in items.values():
                if rec["phone_number"] == phone_number:
                    return account_sid
        return None

    def _is_available(self, phone_number: str) -> bool:
        if phone_number == TEST_NUMBER_BUYS:
            return True
        if self._number_owner(phone_number):
            return False
        if phone_number in self.offered or phone_number in self.extra_available:
            return True
        country = numbers.country_of(phone_number)
        return bool(country) and phone_number in numbers.pool(country, phone_number[2:5])

    def _create_number(self, account_sid: str, phone_number: str, fields: dict) -> dict:
        now = _now()
        sid = fields.pop("sid", None) or _sid("PN")
        rec = {
            "sid": sid, "account_sid": account_sid, "address_sid": None, "address_requirements": "none",
            "api_version": API, "beta": False,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": now, "date_updated": now, "friendly_name": numbers.nanp_friendly(phone_number),
            "identity_sid": None, "phone_number": phone_number, "origin": "twilio", "sms_application_sid": "",
            "sms_fallback_method": "POST", "sms_fallback_url": "", "sms_method": "POST", "sms_url": "",
            "status_callback": "", "status_callback_method": "POST", "trunk_sid": None,
            "voice_receive_mode": "voice", "voice_application_sid": None, "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST", "voice_fallback_url": None, "voice_method": "POST", "voice_url": None,
            "emergency_status": "Inactive", "emergency_address_sid": None, "emergency_address_status": "unregistered",
            "bundle_sid": None, "status": "in-use", "type": "local",
        }
        rec.update(fields)
        self.state["incoming_numbers"][account_sid][sid] = rec
        self.extra_available.discard(phone_number)
        return rec

    def _create_caller_id(self, account_sid: str, phone_number: str, friendly_name: str = "") -> dict:
        for rec in self.state["outgoing_caller_ids"][account_sid].values():
            if rec["phone_number"] == phone_number:
                return rec
        now = _now()
        sid = _sid("PN")
        rec = {"sid": sid, "account_sid": account_sid, "phone_number": phone_number,
               "friendly_name": friendly_name or numbers.nanp_friendly(phone_number),
               "date_created": now, "date_updated": now}
        self.state["outgoing_caller_ids"][account_sid][sid] = rec
        return rec

    def _new_recording(self, account_sid: str, call_sid: str, recording_sid: str, *, channels: int, source: str,
                       status: str) -> dict:
        now = _now()
        rec = {"sid": recording_sid, "account_sid": account_sid, "api_version": API, "call_sid": call_sid,
               "conference_sid": None, "date_created": now, "date_updated": now, "start_time": now,
               "duration": "-1" if status == "in-progress" else "0", "price": None, "price_unit": "USD",
               "status": status, "channels": channels, "source": source, "error_code": None,
               "encryption_details": None, "track": "both", "status_callback_url": None}
        self.state["recordings"][account_sid][recording_sid] = rec
        return rec


def _json_default(value):
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value))


# ---------------------------------------------------------------------------
# Rendering: state records -> Twilio's JSON


def _public(rec: dict) -> dict:
    out = {}
    for key, value in rec.items():
        if key in _PRIVATE:
            continue
        out[key] = _rfc2822(value) if isinstance(value, datetime) else value
    return out


def _account_json(rec: dict) -> dict:
    sid = rec["sid"]
    base = f"/{API}/Accounts/{sid}"
    out = _public(rec)
    out["uri"] = f"{base}.json"
    out["subresource_uris"] = {name: f"{base}/{path}.json" for name, path in (
        ("available_phone_numbers", "AvailablePhoneNumbers"), ("calls", "Calls"), ("keys", "Keys"),
        ("applications", "Applications"), ("incoming_phone_numbers", "IncomingPhoneNumbers"),
        ("outgoing_caller_ids", "OutgoingCallerIds"), ("recordings", "Recordings"))}
    return out


def _with_uri(rec: dict, collection: str) -> dict:
    out = _public(rec)
    out["uri"] = f"/{API}/Accounts/{rec['account_sid']}/{collection}/{rec['sid']}.json"
    return out


def _key_json(rec: dict, *, with_secret: bool = False) -> dict:
    out = {k: rec[k] for k in ("sid", "friendly_name")}
    out["date_created"], out["date_updated"] = _rfc2822(rec["date_created"]), _rfc2822(rec["date_updated"])
    if with_secret:
        out["secret"] = rec["secret"]
    return out


def _call_json(rec: dict) -> dict:
    out = _with_uri(rec, "Calls")
    out["to_formatted"] = numbers.nanp_friendly(rec.get("to") or "")
    out["from_formatted"] = numbers.nanp_friendly(rec.get("from") or "")
    base = out["uri"][:-len(".json")]
    out["subresource_uris"] = {"recordings": f"{base}/Recordings.json", "notifications": f"{base}/Notifications.json"}
    return out


def _recording_json(rec: dict, *, call_scoped: bool) -> dict:
    out = _public(rec)
    base = f"/{API}/Accounts/{rec['account_sid']}"
    if call_scoped:
        out["uri"] = f"{base}/Calls/{rec['call_sid']}/Recordings/{rec['sid']}.json"
    else:
        out["uri"] = f"{base}/Recordings/{rec['sid']}.json"
        out["media_url"] = f"https://api.twilio.com{base}/Recordings/{rec['sid']}"
        out["subresource_uris"] = {"transcriptions": f"{base}/Recordings/{rec['sid']}/Transcriptions.json",
                                   "add_on_results": f"{base}/Recordings/{rec['sid']}/AddOnResults.json"}
    return out


def _alert_json(rec: dict) -> dict:
    out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in rec.items()}
    out["url"] = f"https://monitor.twilio.com/v1/Alerts/{rec['sid']}"
    return out


def _page(key: str, items: list, path: str, query: dict) -> dict:
    """Twilio 2010-04-01 paging envelope (Page/PageSize; next_page_uri relative, as Twilio sends it)."""
    size = _int_param(query, "PageSize", 50, lo=1, hi=1000)
    page = _int_param(query, "Page", 0, lo=0)
    start = page * size
    chunk = items[start:start + size]
    base_query = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

    def uri(p):
        return f"{path}?{urlencode({**base_query, 'PageSize': size, 'Page': p}, doseq=True)}"

    return {
        key: chunk, "start": start, "end": start + max(len(chunk) - 1, 0), "page": page, "page_size": size,
        "first_page_uri": uri(0), "uri": uri(page),
        "next_page_uri": uri(page + 1) if start + size < len(items) else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
    }


def _int_param(query: dict, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, 20001, f"Invalid {name}: {raw}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, 20001, f"Invalid {name}: {raw}")
    return value


# ---------------------------------------------------------------------------
# HTTP


_SID = r"[A-Za-z0-9]+"
_ROUTES: list[tuple[str, re.Pattern, str]] = []


def route(method: str, pattern: str):
    def register(fn):
        _ROUTES.append((method, re.compile("^" + pattern + "$"), fn.__name__))
        return fn
    return register


class _Handler(BaseHTTPRequestHandler):
    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "TwilioSandbox/1.0"

    def log_message(self, format, *args):  # quiet: tests read sandbox.requests instead
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        self._handle("PUT")

    # -- plumbing -----------------------------------------------------------

    def _handle(self, method: str) -> None:
        sb = self.sandbox
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = _flatten(parse_qs(parts.query, keep_blank_values=True))
        form: dict = {}
        if raw:
            ctype = self.headers.get("Content-Type", "")
            if "json" in ctype:
                try:
                    form = json.loads(raw.decode() or "{}")
                except ValueError:
                    form = {}
            else:
                form = _flatten(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))
        if path.startswith("/_sandbox"):
            self._send(self._control(method, path, {**query, **form}))
            return
        with sb.lock:
            sb.requests.append((method, path, {**query, **form}))
            fault = next((f for f in sb.faults if f.matches(method, path, parts.query)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
        if fault is not None and fault.kind.isdigit():
            status = int(fault.kind)
            code = 20429 if status == 429 else 20500 if status >= 500 else status
            message = "Too Many Requests" if status == 429 else "Internal Server Error" if status >= 500 else "Error"
            err = ApiError(status, code, message, headers={"Retry-After": "1"} if status == 429 else None)
            self._send(Result(status, err.body(), headers=err.headers))
            return
        if fault is not None and not fault.after_action:
            if fault.kind == "drop":
                self._drop()
                return
            time.sleep(fault.delay)
        with sb.lock:  # one request at a time changes state (two racing purchases can't both win)
            result = self._dispatch(method, path, query, form)
        if fault is not None and fault.after_action:
            if fault.kind == "drop":
                self._drop()
                return
            time.sleep(fault.delay)
        self._send(result)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            # RST instead of FIN: the client sees "connection reset" / "connection aborted".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        except OSError:
            pass

    def _send(self, result: Result) -> None:
        if isinstance(result.body, (bytes, bytearray)):
            payload = bytes(result.body)
        elif result.body is None:
            payload = b""
        else:
            payload = json.dumps(result.body, default=_json_default).encode()
        try:
            self.send_response(result.status)
            if payload or result.status != 204:
                self.send_header("Content-Type", result.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (result.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD" and payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _dispatch(self, method: str, path: str, query: dict, form: dict) -> Result:
        try:
            for route_method, regex, name in _ROUTES:
                match = regex.match(path)
                if match and route_method == method:
                    return getattr(self, name)(query=query, form=form, path=path, **match.groupdict())
            if any(regex.match(path) for _, regex, _ in _ROUTES):
                raise ApiError(405, 20004, "Method not allowed")
            raise _not_found(path)
        except ApiError as exc:
            return Result(exc.status, exc.body(), headers=exc.headers)

    # -- auth ---------------------------------------------------------------

    def _authenticated(self) -> dict:
        """The account the credentials belong to (Account SID + auth token, or API key SID + secret)."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise ApiError(401, 20003, "Authenticate")
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            raise ApiError(401, 20003, "Authenticate") from None
        accounts = self.sandbox.state["accounts"]
        account = None
        if user.startswith("AC"):
            account = accounts.get(user)
            if account is None or not secrets.compare_digest(account["auth_token"], password):
                account = None
        elif user.startswith("SK"):
            for owner, keys in self.sandbox.state["keys"].items():
                key = keys.get(user)
                if key is not None and secrets.compare_digest(key["secret"], password):
                    account = accounts.get(owner)
        if account is None or account["status"] == "closed":
            raise ApiError(401, 20003, "Authenticate")
        return account

    def _account_for(self, account_sid: str, *, allow_inactive: bool = False) -> dict:
        """Check the caller may act on `account_sid` (itself or one of its sub-accounts)."""
        authed = self._authenticated()
        target = self.sandbox.state["accounts"].get(account_sid)
        if target is None or (target["sid"] != authed["sid"] and target["owner_account_sid"] != authed["sid"]):
            raise ApiError(401, 20003, "Authenticate")
        if target["status"] == "closed" and not allow_inactive:
            raise _not_found(self.path)
        if target["status"] == "suspended" and not allow_inactive:
            raise ApiError(401, 20005, "Account not active")
        return target

    def _item(self, resource: str, account_sid: str, sid: str, path: str) -> dict:
        rec = self.sandbox.state[resource][account_sid].get(sid)
        if rec is None:
            raise _not_found(path)
        return rec

    def _remove(self, resource: str, account_sid: str, sid: str, path: str) -> dict:
        """DELETE of one resource: the account must exist, the item too (else Twilio's 404); returns it."""
        self._account_for(account_sid)
        rec = self._item(resource, account_sid, sid, path)
        del self.sandbox.state[resource][account_sid][sid]
        return rec

    # -- accounts -----------------------------------------------------------

    @route("GET", rf"/{API}/Accounts\.json")
    def accounts_list(self, query, path, **_):
        authed = self._authenticated()
        items = [a for a in self.sandbox.state["accounts"].values()
                 if a["sid"] == authed["sid"] or a["owner_account_sid"] == authed["sid"]]
        if query.get("FriendlyName"):
            items = [a for a in items if a["friendly_name"] == query["FriendlyName"]]
        if query.get("Status"):
            items = [a for a in items if a["status"] == query["Status"]]
        items.sort(key=lambda a: a["date_created"])
        return Result(200, _page("accounts", [_account_json(a) for a in items], path, query))

    @route("POST", rf"/{API}/Accounts\.json")
    def accounts_create(self, form, **_):
        authed = self._authenticated()
        if authed["owner_account_sid"] != authed["sid"]:
            raise ApiError(403, 20008, "Subaccounts cannot create subaccounts")
        name = form.get("FriendlyName") or f"SubAccount Created at {_now().strftime('%Y-%m-%d %I:%M %p')}"
        sid, _token = self.sandbox.add_account(friendly_name=name, type=authed["type"],
                                               owner_account_sid=authed["sid"])
        return Result(201, _account_json(self.sandbox.state["accounts"][sid]))

    @route("GET", rf"/{API}/Accounts/(?P<sid>{_SID})\.json")
    def account_fetch(self, sid, **_):
        return Result(200, _account_json(self._account_for(sid, allow_inactive=True)))

    @route("POST", rf"/{API}/Accounts/(?P<sid>{_SID})\.json")
    def account_update(self, sid, form, **_):
        account = self._account_for(sid, allow_inactive=True)
        if "Status" in form:
            if form["Status"] not in ("active", "suspended", "closed"):
                raise ApiError(400, 20001, f"Invalid Status: {form['Status']}")
            account["status"] = form["Status"]
        if "FriendlyName" in form:
            account["friendly_name"] = form["FriendlyName"]
        account["date_updated"] = _now()
        return Result(200, _account_json(account))

    # -- API keys -----------------------------------------------------------

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Keys\.json")
    def keys_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = sorted(self.sandbox.state["keys"][account_sid].values(), key=lambda k: k["date_created"])
        return Result(200, _page("keys", [_key_json(k) for k in items], path, query))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Keys\.json")
    def keys_create(self, account_sid, form, **_):
        self._account_for(account_sid)
        now = _now()
        key = {"sid": _sid("SK"), "friendly_name": form.get("FriendlyName", ""), "secret": secrets.token_urlsafe(24),
               "date_created": now, "date_updated": now, "account_sid": account_sid}
        self.sandbox.state["keys"][account_sid][key["sid"]] = key
        return Result(201, _key_json(key, with_secret=True))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Keys/(?P<sid>{_SID})\.json")
    def key_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _key_json(self._item("keys", account_sid, sid, path)))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Keys/(?P<sid>{_SID})\.json")
    def key_update(self, account_sid, sid, path, form, **_):
        self._account_for(account_sid)
        key = self._item("keys", account_sid, sid, path)
        if "FriendlyName" in form:
            key["friendly_name"] = form["FriendlyName"]
            key["date_updated"] = _now()
        return Result(200, _key_json(key))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Keys/(?P<sid>{_SID})\.json")
    def key_delete(self, account_sid, sid, path, **_):
        self._remove("keys", account_sid, sid, path)
        return Result(204)

    # -- TwiML applications --------------------------------------------------

    _APP_FIELDS = {"FriendlyName": "friendly_name", "VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
                   "VoiceFallbackUrl": "voice_fallback_url", "VoiceFallbackMethod": "voice_fallback_method",
                   "StatusCallback": "status_callback", "StatusCallbackMethod": "status_callback_method",
                   "VoiceCallerIdLookup": "voice_caller_id_lookup", "SmsUrl": "sms_url", "SmsMethod": "sms_method",
                   "SmsFallbackUrl": "sms_fallback_url", "SmsFallbackMethod": "sms_fallback_method",
                   "SmsStatusCallback": "sms_status_callback", "MessageStatusCallback": "message_status_callback",
                   "PublicApplicationConnectEnabled": "public_application_connect_enabled"}

    def _apply_app(self, app: dict, form: dict) -> None:
        for param, attr in self._APP_FIELDS.items():
            if param in form:
                value = form[param]
                if attr.endswith("_method"):
                    value = value.upper()
                    if value not in ("GET", "POST"):
                        raise ApiError(400, 20001, f"{param} must be GET or POST")
                if attr in ("voice_caller_id_lookup", "public_application_connect_enabled"):
                    value = _bool(value)
                app[attr] = value

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Applications\.json")
    def applications_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = sorted(self.sandbox.state["applications"][account_sid].values(), key=lambda a: a["date_created"])
        if query.get("FriendlyName"):
            items = [a for a in items if a["friendly_name"] == query["FriendlyName"]]
        return Result(200, _page("applications", [_with_uri(a, "Applications") for a in items], path, query))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Applications\.json")
    def applications_create(self, account_sid, form, **_):
        self._account_for(account_sid)
        now = _now()
        app = {"sid": _sid("AP"), "account_sid": account_sid, "api_version": API, "date_created": now,
               "date_updated": now, "friendly_name": "", "message_status_callback": None,
               "sms_fallback_method": "POST", "sms_fallback_url": None, "sms_method": "POST",
               "sms_status_callback": None, "sms_url": None, "status_callback": None,
               "status_callback_method": "POST", "voice_caller_id_lookup": False, "voice_fallback_method": "POST",
               "voice_fallback_url": None, "voice_method": "POST", "voice_url": None,
               "public_application_connect_enabled": True}
        self._apply_app(app, form)
        self.sandbox.state["applications"][account_sid][app["sid"]] = app
        return Result(201, _with_uri(app, "Applications"))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Applications/(?P<sid>{_SID})\.json")
    def application_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _with_uri(self._item("applications", account_sid, sid, path), "Applications"))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Applications/(?P<sid>{_SID})\.json")
    def application_update(self, account_sid, sid, path, form, **_):
        self._account_for(account_sid)
        app = self._item("applications", account_sid, sid, path)
        self._apply_app(app, form)
        app["date_updated"] = _now()
        return Result(200, _with_uri(app, "Applications"))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Applications/(?P<sid>{_SID})\.json")
    def application_delete(self, account_sid, sid, path, **_):
        self._remove("applications", account_sid, sid, path)
        return Result(204)

    # -- available and incoming numbers ---------------------------------------

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/AvailablePhoneNumbers/(?P<country>[A-Z]{{2}})/Local\.json")
    def available_local(self, account_sid, country, query, path, **_):
        self._account_for(account_sid)
        if country not in numbers.SUPPORTED_COUNTRIES:
            raise _not_found(path)
        size = _int_param(query, "PageSize", 50, lo=1, hi=1000)
        area = (query.get("AreaCode") or "").strip()
        contains = query.get("Contains") or ""
        if area and not re.fullmatch(r"\d{3}", area):
            raise ApiError(400, 21452, f"Invalid AreaCode: {area}")
        areas = [area] if area else sorted(numbers.AREA_CODES[country])
        regex = numbers.contains_regex(contains)
        found: list[str] = []
        sb = self.sandbox
        for code in areas:
            candidates = numbers.pool(country, code)
            if regex is not None:
                candidates = [n for n in candidates if regex.search(n[1:])]
                if len(candidates) < size:
                    candidates += [n for n in numbers.synthesize(country, code, contains, size) if n not in candidates]
            for number in candidates:
                if number not in found and sb._number_owner(number) is None:
                    found.append(number)
            if len(found) >= size:
                break
        found = found[:size]
        sb.offered.update(found)
        items = [numbers.details(country, n) for n in found]
        return Result(200, {"available_phone_numbers": items, "uri": f"{path}?{urlencode(query)}",
                            "end": max(len(items) - 1, 0), "first_page_uri": f"{path}?{urlencode(query)}",
                            "next_page_uri": None, "page": 0, "page_size": size, "previous_page_uri": None,
                            "start": 0})

    _NUMBER_FIELDS = {"FriendlyName": "friendly_name", "VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
                      "VoiceApplicationSid": "voice_application_sid", "VoiceFallbackUrl": "voice_fallback_url",
                      "VoiceFallbackMethod": "voice_fallback_method", "StatusCallback": "status_callback",
                      "StatusCallbackMethod": "status_callback_method", "SmsUrl": "sms_url",
                      "SmsMethod": "sms_method", "SmsApplicationSid": "sms_application_sid",
                      "VoiceCallerIdLookup": "voice_caller_id_lookup", "TrunkSid": "trunk_sid",
                      "VoiceReceiveMode": "voice_receive_mode", "AddressSid": "address_sid",
                      "IdentitySid": "identity_sid", "BundleSid": "bundle_sid"}

    def _apply_number(self, account_sid: str, rec: dict, form: dict) -> None:
        app_sid = form.get("VoiceApplicationSid")
        if app_sid and app_sid not in self.sandbox.state["applications"][account_sid]:
            raise ApiError(400, 20001, f"VoiceApplicationSid {app_sid} is not a TwiML application of this account")
        for param, attr in self._NUMBER_FIELDS.items():
            if param in form:
                value = form[param]
                if attr.endswith("_method"):
                    value = value.upper()
                    if value not in ("GET", "POST"):
                        raise ApiError(400, 20001, f"{param} must be GET or POST")
                if attr == "voice_caller_id_lookup":
                    value = _bool(value)
                rec[attr] = value if value != "" or attr not in ("voice_application_sid", "trunk_sid") else None

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/IncomingPhoneNumbers\.json")
    def incoming_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = sorted(self.sandbox.state["incoming_numbers"][account_sid].values(), key=lambda n: n["date_created"])
        if query.get("PhoneNumber"):
            wanted = query["PhoneNumber"].strip()
            items = [n for n in items if wanted.lstrip("+") in n["phone_number"]]
        if query.get("FriendlyName"):
            items = [n for n in items if n["friendly_name"] == query["FriendlyName"]]
        return Result(200, _page("incoming_phone_numbers", [_with_uri(n, "IncomingPhoneNumbers") for n in items],
                                 path, query))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/IncomingPhoneNumbers\.json")
    def incoming_create(self, account_sid, form, **_):
        self._account_for(account_sid)
        sb = self.sandbox
        number = (form.get("PhoneNumber") or "").strip()
        area = (form.get("AreaCode") or "").strip()
        if not number and not area:
            raise ApiError(400, 21451, "Either PhoneNumber or AreaCode is required")
        if number == TEST_NUMBER_UNAVAILABLE:
            raise ApiError(400, 21422, f"PhoneNumber {number} is not available.")
        if number == TEST_NUMBER_INVALID:
            raise ApiError(400, 21421, f"PhoneNumber {number} is invalid.")
        if number:
            if not numbers.is_e164(number) or (number.startswith("+1") and not numbers.is_valid_nanp(number)
                                               and number != TEST_NUMBER_BUYS):
                raise ApiError(400, 21421, f"PhoneNumber {number} is invalid.")
            if not sb._is_available(number):
                raise ApiError(400, 21422, f"PhoneNumber {number} is not available.")
        else:
            country = next((c for c, codes in numbers.AREA_CODES.items() if area in codes), None)
            candidates = [n for n in numbers.pool(country, area)] if country else []
            number = next((n for n in candidates if sb._is_available(n)), "")
            if not number:
                raise ApiError(400, 21422, f"No phone numbers found for AreaCode {area}.")
        rec = sb._create_number(account_sid, number, {})
        try:
            self._apply_number(account_sid, rec, form)
        except ApiError:
            del sb.state["incoming_numbers"][account_sid][rec["sid"]]
            raise
        return Result(201, _with_uri(rec, "IncomingPhoneNumbers"))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/IncomingPhoneNumbers/(?P<sid>{_SID})\.json")
    def incoming_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _with_uri(self._item("incoming_numbers", account_sid, sid, path), "IncomingPhoneNumbers"))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/IncomingPhoneNumbers/(?P<sid>{_SID})\.json")
    def incoming_update(self, account_sid, sid, path, form, **_):
        self._account_for(account_sid)
        rec = self._item("incoming_numbers", account_sid, sid, path)
        self._apply_number(account_sid, rec, form)
        rec["date_updated"] = _now()
        return Result(200, _with_uri(rec, "IncomingPhoneNumbers"))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/IncomingPhoneNumbers/(?P<sid>{_SID})\.json")
    def incoming_delete(self, account_sid, sid, path, **_):
        self._remove("incoming_numbers", account_sid, sid, path)
        return Result(204)

    # -- caller IDs -----------------------------------------------------------

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/OutgoingCallerIds\.json")
    def validation_create(self, account_sid, form, **_):
        """CreateValidationRequest: Twilio calls the number and asks for the code (200, not 201)."""
        self._account_for(account_sid)
        number = (form.get("PhoneNumber") or "").strip()
        if not number:
            raise _missing("PhoneNumber")
        if not numbers.is_e164(number) or number == TEST_NUMBER_INVALID:
            raise ApiError(400, 21421, f"PhoneNumber {number} is invalid.")
        sb = self.sandbox
        if any(c["phone_number"] == number for c in sb.state["outgoing_caller_ids"][account_sid].values()):
            raise ApiError(400, 21450, "Phone number is already verified.")
        code = str(int(hashlib.sha256(f"{account_sid}{number}".encode()).hexdigest(), 16) % 900000 + 100000)
        call_sid = _sid("CA")
        pending = {"account_sid": account_sid, "call_sid": call_sid, "friendly_name": form.get("FriendlyName") or
                   numbers.nanp_friendly(number), "phone_number": number, "validation_code": code,
                   "status": "pending", "status_callback_url": form.get("StatusCallback"), "date_created": _now()}
        sb.state["validation_requests"][account_sid][number] = pending
        body = _public(pending)
        body.pop("status", None)
        body.pop("date_created", None)
        if sb.auto_complete_validations:
            threading.Thread(target=self._auto_complete, args=(account_sid, number), daemon=True).start()
        return Result(200, body)

    def _auto_complete(self, account_sid: str, number: str) -> None:
        time.sleep(0.2)  # after our answer reached the caller, as a real call would take a while
        try:
            self.sandbox.complete_validation(account_sid, number)
        except KeyError:
            pass

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/OutgoingCallerIds\.json")
    def caller_ids_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = sorted(self.sandbox.state["outgoing_caller_ids"][account_sid].values(), key=lambda c: c["date_created"])
        if query.get("PhoneNumber"):
            items = [c for c in items if c["phone_number"] == query["PhoneNumber"].strip()]
        if query.get("FriendlyName"):
            items = [c for c in items if c["friendly_name"] == query["FriendlyName"]]
        return Result(200, _page("outgoing_caller_ids", [_with_uri(c, "OutgoingCallerIds") for c in items], path, query))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/OutgoingCallerIds/(?P<sid>{_SID})\.json")
    def caller_id_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _with_uri(self._item("outgoing_caller_ids", account_sid, sid, path), "OutgoingCallerIds"))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/OutgoingCallerIds/(?P<sid>{_SID})\.json")
    def caller_id_update(self, account_sid, sid, path, form, **_):
        self._account_for(account_sid)
        rec = self._item("outgoing_caller_ids", account_sid, sid, path)
        if "FriendlyName" in form:
            rec["friendly_name"] = form["FriendlyName"]
            rec["date_updated"] = _now()
        return Result(200, _with_uri(rec, "OutgoingCallerIds"))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/OutgoingCallerIds/(?P<sid>{_SID})\.json")
    def caller_id_delete(self, account_sid, sid, path, **_):
        rec = self._remove("outgoing_caller_ids", account_sid, sid, path)
        self.sandbox.state["validation_requests"][account_sid].pop(rec["phone_number"], None)
        return Result(204)

    # -- calls ----------------------------------------------------------------

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls\.json")
    def calls_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = sorted(self.sandbox.state["calls"][account_sid].values(), key=lambda c: c["date_created"],
                       reverse=True)
        for param, attr in (("To", "to"), ("From", "from"), ("Status", "status"), ("ParentCallSid", "parent_call_sid")):
            if query.get(param):
                items = [c for c in items if c.get(attr) == query[param]]
        return Result(200, _page("calls", [_call_json(c) for c in items], path, query))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls\.json")
    def calls_create(self, account_sid, form, **_):
        self._account_for(account_sid)
        for name in ("To", "From"):
            if not form.get(name):
                raise _missing(name)
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            raise ApiError(400, 21205, "Url, Twiml or ApplicationSid is required")
        from devtools.twilio_sandbox import outbound

        if form["To"] == outbound.TEST_NUMBER_INVALID:
            raise ApiError(400, 21217, f"Phone number {form['To']} is not a valid phone number.")
        sid = self.sandbox.add_call(account_sid, to=form["To"], from_=form["From"], status="queued",
                                    direction="outbound-api", start_time=None, twiml=form.get("Twiml"),
                                    params=dict(form))
        result = Result(201, _call_json(self.sandbox.state["calls"][account_sid][sid]))
        if form.get("Url") and self.sandbox.dial_outbound:
            outbound.dial(self.sandbox, account_sid, sid, form)  # the callee's side (devtools/.../outbound.py)
        return result

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<sid>{_SID})\.json")
    def call_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _call_json(self._item("calls", account_sid, sid, path)))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<sid>{_SID})\.json")
    def call_update(self, account_sid, sid, path, form, **_):
        self._account_for(account_sid)
        call = self._item("calls", account_sid, sid, path)
        status = form.get("Status")
        if status is not None and status not in ("canceled", "completed"):
            raise ApiError(400, 20001, f"Invalid Status: {status}")
        live = call["status"] in ("queued", "ringing", "in-progress")
        if not live:
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        call["updates"].append(dict(form))
        if form.get("Twiml") is not None:
            call["twiml"] = form["Twiml"]
            call["twiml_history"].append(form["Twiml"])
        if form.get("Url"):
            call["twiml_history"].append({"Url": form["Url"], "Method": form.get("Method", "POST")})
        if status == "completed" or (status == "canceled" and call["status"] in ("queued", "ringing")):
            now = _now()
            call.update(status=status, end_time=now)
            if call.get("start_time"):
                call["duration"] = str(int((now - call["start_time"]).total_seconds()))
        call["date_updated"] = _now()
        if form.get("Twiml") is not None or form.get("Url") or status is not None:
            from devtools.twilio_sandbox import conference

            conference.call_redirected(self.sandbox, account_sid, sid)  # it leaves its conference at once
        return Result(200, _call_json(call))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<sid>{_SID})\.json")
    def call_delete(self, account_sid, sid, path, **_):
        self._remove("calls", account_sid, sid, path)
        return Result(204)

    # -- conferences (devtools/twilio_sandbox/conference.py) --------------------

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Conferences/(?P<sid>{_SID})\.json")
    def conference_fetch(self, account_sid, sid, path, **_):
        from devtools.twilio_sandbox import conference

        self._account_for(account_sid)
        return Result(200, conference.conference_json(self._item("conferences", account_sid, sid, path)))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Conferences/(?P<conference>[^/]+)/Participants\.json")
    def participant_create(self, account_sid, conference, form, **_):
        from urllib.parse import unquote

        from devtools.twilio_sandbox import conference as conferences

        self._account_for(account_sid)
        with self.sandbox.lock:
            return Result(201, conferences.participant_create(self.sandbox, account_sid, unquote(conference), form))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Conferences/(?P<conference_sid>{_SID})/Participants/(?P<call_sid>{_SID})\.json")
    def participant_update(self, account_sid, conference_sid, call_sid, form, **_):
        from devtools.twilio_sandbox import conference

        self._account_for(account_sid)
        with self.sandbox.lock:
            return Result(200, conference.participant_update(self.sandbox, account_sid, conference_sid, call_sid, form))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Conferences/(?P<conference_sid>{_SID})/Participants/(?P<call_sid>{_SID})\.json")
    def participant_delete(self, account_sid, conference_sid, call_sid, path, **_):
        from devtools.twilio_sandbox import conference

        self._account_for(account_sid)
        if not conference.in_conference(self.sandbox, account_sid, conference_sid, call_sid):
            raise _not_found(path)
        conference.leave(self.sandbox, account_sid, call_sid, reason="removed")
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][account_sid].get(call_sid)
            if call is not None and call["status"] in ("queued", "ringing", "in-progress"):
                call.update(status="completed", end_time=_now())
        return Result(204)

    # -- recordings -----------------------------------------------------------

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<call_sid>{_SID})/Recordings\.json")
    def call_recording_create(self, account_sid, call_sid, path, form, **_):
        self._account_for(account_sid)
        call = self._item("calls", account_sid, call_sid, path)
        if call["status"] != "in-progress":
            raise ApiError(400, 21220, "Requested resource is not eligible for recording")
        channels_raw = (form.get("RecordingChannels") or "mono").lower()
        if channels_raw not in ("mono", "dual"):
            raise ApiError(400, 20001, f"Invalid RecordingChannels: {channels_raw}")
        rec = self.sandbox._new_recording(account_sid, call_sid, _sid("RE"), channels=2 if channels_raw == "dual" else 1,
                                          source="StartCallRecordingAPI", status="in-progress")
        rec["status_callback_url"] = form.get("RecordingStatusCallback")
        rec["track"] = form.get("RecordingTrack", "both")
        return Result(201, _recording_json(rec, call_scoped=True))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<call_sid>{_SID})/Recordings\.json")
    def call_recordings_list(self, account_sid, call_sid, query, path, **_):
        self._account_for(account_sid)
        items = [r for r in self.sandbox.state["recordings"][account_sid].values() if r["call_sid"] == call_sid]
        items.sort(key=lambda r: r["date_created"], reverse=True)
        return Result(200, _page("recordings", [_recording_json(r, call_scoped=True) for r in items], path, query))

    def _call_recording(self, account_sid, call_sid, sid, path) -> dict:
        rec = self._item("recordings", account_sid, sid, path)
        if rec["call_sid"] != call_sid:
            raise _not_found(path)
        return rec

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<call_sid>{_SID})/Recordings/(?P<sid>{_SID})\.json")
    def call_recording_fetch(self, account_sid, call_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _recording_json(self._call_recording(account_sid, call_sid, sid, path), call_scoped=True))

    @route("POST", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<call_sid>{_SID})/Recordings/(?P<sid>{_SID})\.json")
    def call_recording_update(self, account_sid, call_sid, sid, path, form, **_):
        self._account_for(account_sid)
        rec = self._call_recording(account_sid, call_sid, sid, path)
        status = form.get("Status")
        if status not in ("stopped", "paused", "in-progress"):
            raise ApiError(400, 20001, f"Invalid Status: {status}")
        if status == "stopped":
            rec.update(status="completed", duration=rec["duration"] if rec["duration"] != "-1" else "0")
        else:
            rec["status"] = status
        rec["date_updated"] = _now()
        return Result(200, _recording_json(rec, call_scoped=True))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Calls/(?P<call_sid>{_SID})/Recordings/(?P<sid>{_SID})\.json")
    def call_recording_delete(self, account_sid, call_sid, sid, path, **_):
        self._account_for(account_sid)
        self._call_recording(account_sid, call_sid, sid, path)
        del self.sandbox.state["recordings"][account_sid][sid]
        return Result(204)

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Recordings\.json")
    def recordings_list(self, account_sid, query, path, **_):
        self._account_for(account_sid)
        items = list(self.sandbox.state["recordings"][account_sid].values())
        if query.get("CallSid"):
            items = [r for r in items if r["call_sid"] == query["CallSid"]]
        items.sort(key=lambda r: r["date_created"], reverse=True)
        return Result(200, _page("recordings", [_recording_json(r, call_scoped=False) for r in items], path, query))

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Recordings/(?P<sid>{_SID})\.json")
    def recording_fetch(self, account_sid, sid, path, **_):
        self._account_for(account_sid)
        return Result(200, _recording_json(self._item("recordings", account_sid, sid, path), call_scoped=False))

    @route("DELETE", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Recordings/(?P<sid>{_SID})\.json")
    def recording_delete(self, account_sid, sid, path, **_):
        self._remove("recordings", account_sid, sid, path)
        return Result(204)

    @route("GET", rf"/{API}/Accounts/(?P<account_sid>{_SID})/Recordings/(?P<sid>{_SID})(?P<ext>\.mp3|\.wav|)")
    def recording_media(self, account_sid, sid, ext, path, **_):
        self._account_for(account_sid)
        rec = self._item("recordings", account_sid, sid, path)
        if rec["status"] != "completed":
            raise _not_found(path)
        if ext == ".mp3":
            return Result(200, MP3_BYTES, content_type="audio/mpeg")
        pcm = b"\x00\x00" * 8000
        header = (b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
                  + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
                  + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
                  + b"data" + len(pcm).to_bytes(4, "little"))
        return Result(200, header + pcm, content_type="audio/x-wav")

    # -- Monitor alerts (monitor.twilio.com/v1) --------------------------------

    @route("GET", r"/v1/Alerts")
    def alerts_list(self, query, path, **_):
        authed = self._authenticated()
        items = sorted(self.sandbox.state["alerts"][authed["sid"]].values(), key=lambda a: a["date_created"],
                       reverse=True)
        start, end = query.get("StartDate"), query.get("EndDate")
        if start:
            since = _parse_iso(start)
            if since is None:
                raise ApiError(400, 20001, f"Invalid StartDate: {start}")
            items = [a for a in items if a["date_created"] >= since]
        if end:
            until = _parse_iso(end)
            if until is None:
                raise ApiError(400, 20001, f"Invalid EndDate: {end}")
            items = [a for a in items if a["date_created"] <= until]
        if query.get("LogLevel"):
            items = [a for a in items if a["log_level"] == query["LogLevel"]]
        size = _int_param(query, "PageSize", 50, lo=1, hi=1000)
        page = _int_param(query, "Page", 0, lo=0)
        chunk = items[page * size:(page + 1) * size]
        base_query = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def url(p):
            return f"https://monitor.twilio.com/v1/Alerts?{urlencode({**base_query, 'PageSize': size, 'Page': p})}"

        meta = {"first_page_url": url(0), "key": "alerts", "url": url(page), "page": page, "page_size": size,
                "next_page_url": url(page + 1) if (page + 1) * size < len(items) else None,
                "previous_page_url": url(page - 1) if page > 0 else None}
        return Result(200, {"alerts": [_alert_json(a) for a in chunk], "meta": meta})

    @route("GET", rf"/v1/Alerts/(?P<sid>{_SID})")
    def alert_fetch(self, sid, path, **_):
        authed = self._authenticated()
        alert = self.sandbox.state["alerts"][authed["sid"]].get(sid)
        if alert is None:
            raise _not_found(path)
        return Result(200, _alert_json(alert))

    # -- control API (/_sandbox/...): no auth, local use only ---------------------

    def _control(self, method: str, path: str, params: dict) -> Result:
        sb = self.sandbox
        action = path[len("/_sandbox"):].strip("/")
        try:
            if method == "GET" and action in ("", "help"):
                return Result(200, {"endpoints": _CONTROL_HELP})
            if method == "GET" and action == "state":
                return Result(200, sb.snapshot())
            if method == "GET" and action == "simulated_calls":
                with sb.lock:
                    calls = list(sb.simulated.values())
                return Result(200, {"calls": [c.as_json() for c in calls]})
            if method == "GET" and action.startswith("simulated_calls/"):
                call = sb.simulated.get(action.split("/", 1)[1])
                if call is None:
                    raise _not_found(path)
                return Result(200, call.as_json())
            if method == "GET" and action == "requests":
                with sb.lock:
                    return Result(200, {"requests": [list(r) for r in sb.requests], "callbacks": sb.callbacks})
            if method != "POST":
                raise ApiError(405, 20004, "Method not allowed")
            if action == "reset":
                sb.reset()
                return Result(200, {"ok": True})
            if action == "accounts":
                sid, token = sb.add_account(params.get("Sid") or None, params.get("AuthToken") or None,
                                            status=params.get("Status", "active"),
                                            friendly_name=params.get("FriendlyName", ""))
                return Result(201, {"sid": sid, "auth_token": token})
            if action == "account_status":
                sb.set_account_status(params["AccountSid"], params["Status"])
                return Result(200, {"ok": True})
            if action == "incoming_numbers":
                sid = sb.add_incoming_number(params["AccountSid"], params["PhoneNumber"])
                return Result(201, {"sid": sid})
            if action == "complete_validation":
                sid = sb.complete_validation(params["AccountSid"], params["PhoneNumber"],
                                             success=_bool(params.get("Success"), True))
                return Result(200, {"outgoing_caller_id_sid": sid})
            if action == "auto_complete_validations":
                sb.auto_complete_validations = _bool(params.get("Enabled"), True)
                return Result(200, {"auto_complete_validations": sb.auto_complete_validations})
            if action == "calls":
                fields = {k.lower(): v for k, v in params.items() if k in ("To", "From", "Status", "Direction")}
                sid = sb.add_call(params["AccountSid"], params.get("CallSid") or None, **fields)
                return Result(201, {"sid": sid})
            if action == "simulate_call":
                call = sb.simulate_call(params["AccountSid"], params["To"], from_=params.get("From") or "+15005550006",
                                        say=params.get("Say", ""), dial_outcome=params.get("DialOutcome", "completed"),
                                        script=_script(params.get("Script")))
                return Result(201, {"sid": call.call_sid, "progress": f"/_sandbox/simulated_calls/{call.call_sid}"})
            if action == "complete_recording":
                sb.complete_recording(params["AccountSid"], params["RecordingSid"],
                                      duration=int(params.get("Duration", 42)))
                return Result(200, {"ok": True})
            if action == "alerts":
                sid = sb.add_alert(params["AccountSid"], params.get("ErrorCode", "11200"), params.get("AlertText", ""),
                                   log_level=params.get("LogLevel", "error"), resource_sid=params.get("ResourceSid"))
                return Result(201, {"sid": sid})
            if action == "faults":
                times = params.get("Times", "1")
                sb.inject_fault(params.get("Method") or None, params.get("PathPattern", "."), params.get("Kind", "500"),
                                times=None if times in ("", "forever", None) else int(times),
                                delay=float(params.get("Delay", 3.0)),
                                after_action=_bool(params.get("AfterAction"), True))
                return Result(201, {"ok": True})
            if action == "clear_faults":
                sb.clear_faults()
                return Result(200, {"ok": True})
            raise _not_found(path)
        except ApiError as exc:
            return Result(exc.status, exc.body())
        except (KeyError, ValueError) as exc:
            return Result(400, {"code": 20001, "message": f"Bad control request: {exc!r}", "status": 400})


_CONTROL_HELP = {
    "GET /_sandbox/state": "everything the sandbox remembers (JSON)",
    "GET /_sandbox/requests": "the REST requests received and status callbacks sent",
    "POST /_sandbox/reset": "forget everything",
    "POST /_sandbox/accounts": "Sid?, AuthToken?, FriendlyName?, Status? -> {sid, auth_token}",
    "POST /_sandbox/account_status": "AccountSid, Status (active|suspended|closed)",
    "POST /_sandbox/incoming_numbers": "AccountSid, PhoneNumber: a number the account already owns",
    "POST /_sandbox/complete_validation": "AccountSid, PhoneNumber, Success?: finish a caller ID verification call",
    "POST /_sandbox/auto_complete_validations": "Enabled=true|false",
    "POST /_sandbox/calls": "AccountSid, CallSid?, To?, From?, Status?, Direction?: a live call",
    "POST /_sandbox/simulate_call": "AccountSid, To, From?, Say?, DialOutcome?, Script? (JSON list of steps: "
                                    '{"say": "..."}, {"press": "1"}, {"silence": 2}): place an inbound call to a '
                                    "number, as Twilio would (its voice URL, the TwiML, streams, callbacks)",
    "GET /_sandbox/simulated_calls[/<CallSid>]": "the simulated calls and what happened in each",
    "POST /_sandbox/complete_recording": "AccountSid, RecordingSid, Duration?",
    "POST /_sandbox/alerts": "AccountSid, ErrorCode, AlertText, LogLevel?, ResourceSid?",
    "POST /_sandbox/faults": "Method?, PathPattern, Kind (429|500|slow|drop), Times?, Delay?, AfterAction?",
    "POST /_sandbox/clear_faults": "remove every injected fault",
}


def _flatten(parsed: dict[str, list[str]]) -> dict:
    return {k: (v[0] if len(v) == 1 else v) for k, v in parsed.items()}


def _script(raw) -> list | None:
    """The control API's `Script`: a JSON list of caller steps (strings are said), or None."""
    if not raw:
        return None
    steps = json.loads(raw)
    if not isinstance(steps, list) or not all(isinstance(x, (str, dict)) for x in steps):
        raise ValueError("Script must be a JSON list of steps")
    return steps
