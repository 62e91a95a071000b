"""The one module that talks to Twilio's REST API (the only importer of `twilio.rest`).

Every function takes the account's credentials explicitly and keyword-only,
uses explicit connect/read timeouts, and raises only `dialer.errors` errors.
`settings.TWILIO_API_BASE_URL` (empty = the real Twilio) sends every request to
another server instead: the local sandbox or Prism on Twilio's OpenAPI spec.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from telephony import errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """REST credentials of one Twilio account. `repr` never shows the token."""

    account_sid: str
    auth_token: str = field(repr=False)

    def __str__(self) -> str:
        return self.account_sid


@dataclass(frozen=True)
class Account:
    sid: str
    status: str  # active, suspended, closed
    friendly_name: str
    type: str  # Full, Trial
    owner_account_sid: str | None


@dataclass(frozen=True)
class NewSubaccount:
    sid: str
    auth_token: str = field(repr=False)
    friendly_name: str = ""


@dataclass(frozen=True)
class NewApiKey:
    sid: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Application:
    sid: str
    friendly_name: str
    voice_url: str
    voice_method: str
    status_callback: str | None = None


@dataclass(frozen=True)
class AvailableNumber:
    phone_number: str
    friendly_name: str
    locality: str
    region: str
    postal_code: str
    iso_country: str
    capabilities: dict


@dataclass(frozen=True)
class IncomingNumber:
    sid: str
    phone_number: str
    friendly_name: str
    voice_url: str | None
    voice_method: str | None
    voice_application_sid: str | None
    capabilities: dict


@dataclass(frozen=True)
class CallerIdValidation:
    phone_number: str
    validation_code: str
    call_sid: str | None


@dataclass(frozen=True)
class OutgoingCallerId:
    sid: str
    phone_number: str
    friendly_name: str


@dataclass(frozen=True)
class CallInfo:
    sid: str
    status: str


@dataclass(frozen=True)
class ParticipantInfo:
    call_sid: str
    conference_sid: str
    status: str
    label: str = ""
    hold: bool = False
    muted: bool = False


@dataclass(frozen=True)
class Recording:
    sid: str
    call_sid: str
    status: str
    channels: int | None
    duration: int | None


@dataclass(frozen=True)
class Alert:
    sid: str
    error_code: str
    log_level: str
    alert_text: str
    more_info: str
    resource_sid: str | None
    date_created: datetime | None


# ---------------------------------------------------------------------------
# Transport


class _GatewayHttpClient(TwilioHttpClient):
    """Twilio's HTTP client with (connect, read) timeouts and an optional base-URL rewrite."""

    def __init__(self):
        super().__init__(pool_connections=True)
        # Set after __init__: the library only validates a single float there.
        self.timeout = (settings.TWILIO_CONNECT_TIMEOUT, settings.TWILIO_READ_TIMEOUT)

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        return super().request(method, rewrite_url(url), params=params, data=data, headers=headers, auth=auth,
                               timeout=None, allow_redirects=allow_redirects)


def rewrite_url(url: str) -> str:
    base = settings.TWILIO_API_BASE_URL
    if not base:
        return url
    target = urlsplit(base)
    parts = urlsplit(url)
    path = target.path.rstrip("/") + parts.path
    return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))


_http_client: _GatewayHttpClient | None = None


def _client(creds: Credentials) -> Client:
    global _http_client
    if _http_client is None:
        _http_client = _GatewayHttpClient()
    if not creds.account_sid or not creds.auth_token:
        raise errors.TwilioNotConfigured("No Twilio credentials are configured for this workspace.")
    return Client(creds.account_sid, creds.auth_token, http_client=_http_client, environment={})


def reset_http_client() -> None:
    """Drop pooled connections (tests that change TWILIO_API_BASE_URL or timeouts call this)."""
    global _http_client
    _http_client = None


_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_LIBRARY_PREFIX = re.compile(r"^Unable to (?:create|fetch|update|delete|read|stream) (?:record|records|page)s?: ")


def _page_error(exc: TwilioException) -> TwilioRestException | None:
    """List calls fail with a bare `TwilioException("Unable to fetch page", response)`: recover status and code."""
    if len(exc.args) < 2 or not isinstance(exc.args[1], TwilioResponse):
        return None
    response = exc.args[1]
    message, code = exc.args[0], response.status_code
    try:
        payload = json.loads(response.text)
    except (TypeError, ValueError):
        payload = None
    if isinstance(payload, dict):
        message = payload.get("message") or payload.get("detail") or payload.get("title") or message
        code = payload.get("code", code)
    return TwilioRestException(response.status_code, "", message, code, "GET")


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, DNS, connect timeout): nothing was sent."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError is one too


def _translate(exc: Exception, *, op: str, mutating: bool) -> errors.TwilioError:
    if type(exc) is TwilioException and (rest := _page_error(exc)) is not None:
        exc = rest
    if isinstance(exc, TwilioRestException):
        code = exc.code
        status = exc.status
        message = exc.msg or "Twilio refused the request."
        # The library prefixes its message with the HTTP method/URL; keep Twilio's own text.
        if isinstance(message, str) and "\n" in message:
            message = message.strip().splitlines()[-1]
        if isinstance(message, str):
            # The library prepends "Unable to create record: " etc.; users should see Twilio's own text.
            message = _LIBRARY_PREFIX.sub("", message) or message
        more_info = getattr(exc, "more_info", "") or ""
        kwargs = dict(code=code, status=status, more_info=more_info)
        if status in _TRANSIENT_STATUS or code == errors.TOO_MANY_REQUESTS:
            return errors.TwilioTransientError(message, ambiguous=mutating and status >= 500, **kwargs)
        if code == errors.AUTHENTICATION_FAILED or status == 401:
            return errors.TwilioAuthError(message, **kwargs)
        if code == errors.NUMBER_UNAVAILABLE:
            return errors.NumberUnavailable(message, **kwargs)
        if code == errors.INVALID_PHONE_NUMBER:
            return errors.InvalidPhoneNumber(message, **kwargs)
        if status == 404:
            return errors.TwilioNotFound(message, **kwargs)
        return errors.TwilioPermanentError(message, **kwargs)
    if isinstance(exc, TwilioServiceException):
        # RFC 9457 error bodies (newer Twilio APIs): same classification by status and code.
        rest = TwilioRestException(exc.status, exc.uri, exc.detail or exc.title, exc.code, exc.method)
        return _translate(rest, op=op, mutating=mutating)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return errors.TwilioTransientError("Twilio did not answer in time (connect timeout).")
    if isinstance(exc, requests.exceptions.Timeout):
        return errors.TwilioTransientError("Twilio did not answer in time.", ambiguous=mutating)
    if isinstance(exc, requests.exceptions.ConnectionError):
        # Refused before sending is not ambiguous; a reset after sending may be.
        return errors.TwilioTransientError("Could not reach Twilio (connection failed).",
                                           ambiguous=mutating and not _never_connected(exc))
    if isinstance(exc, (requests.exceptions.RequestException, TwilioException, ValueError)):
        return errors.TwilioTransientError(f"Unexpected answer from Twilio ({type(exc).__name__}).", ambiguous=mutating)
    raise exc


class _call:
    """`with _call("op", creds, mutating=True): ...` turns library errors into ours and logs them."""

    def __init__(self, op: str, creds: Credentials | None, *, mutating: bool = False):
        self.op, self.creds, self.mutating = op, creds, mutating

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, errors.TwilioError):
            return False
        translated = _translate(exc, op=self.op, mutating=self.mutating)
        logger.warning(
            "twilio call failed",
            extra={"op": self.op, "account_sid": getattr(self.creds, "account_sid", None), "code": translated.code,
                   "status": translated.status, "transient": translated.transient, "ambiguous": translated.ambiguous},
        )
        raise translated from exc


def _account(creds: Credentials):
    return _client(creds).api.v2010.accounts(creds.account_sid)


# ---------------------------------------------------------------------------
# Accounts


def account_fetch(*, creds: Credentials) -> Account:
    with _call("account_fetch", creds):
        a = _account(creds).fetch()
        return Account(sid=a.sid, status=a.status, friendly_name=a.friendly_name or "", type=a.type or "",
                       owner_account_sid=a.owner_account_sid)


def subaccount_create(*, parent: Credentials, friendly_name: str) -> NewSubaccount:
    with _call("subaccount_create", parent, mutating=True):
        a = _client(parent).api.v2010.accounts.create(friendly_name=friendly_name)
        return NewSubaccount(sid=a.sid, auth_token=a.auth_token, friendly_name=a.friendly_name or "")


def subaccount_find(*, parent: Credentials, friendly_name: str) -> NewSubaccount | None:
    """The parent's active sub-account with this exact friendly name (used to recover from ambiguous creates)."""
    with _call("subaccount_find", parent):
        for a in _client(parent).api.v2010.accounts.list(friendly_name=friendly_name, status="active", limit=20):
            if a.friendly_name == friendly_name and a.sid != parent.account_sid:
                return NewSubaccount(sid=a.sid, auth_token=a.auth_token, friendly_name=a.friendly_name)
    return None


# ---------------------------------------------------------------------------
# API keys and TwiML apps (what the browser dialer needs)


def api_key_create(*, creds: Credentials, friendly_name: str) -> NewApiKey:
    with _call("api_key_create", creds, mutating=True):
        # POST .../Keys.json is `new_keys` in the library (`keys` has no create).
        k = _account(creds).new_keys.create(friendly_name=friendly_name)
        return NewApiKey(sid=k.sid, secret=k.secret)


@dataclass(frozen=True)
class ApiKey:
    sid: str
    friendly_name: str


def api_keys_list(*, creds: Credentials, limit: int = 200) -> list[ApiKey]:
    """The account's API keys (without secrets: Twilio returns a secret only when a key is created)."""
    with _call("api_keys_list", creds):
        return [ApiKey(sid=k.sid, friendly_name=k.friendly_name or "") for k in _account(creds).keys.list(limit=limit)]


def api_key_exists(*, creds: Credentials, key_sid: str) -> bool:
    try:
        with _call("api_key_fetch", creds):
            _account(creds).keys(key_sid).fetch()
    except errors.TwilioNotFound:
        return False
    return True


def api_key_delete(*, creds: Credentials, key_sid: str) -> None:
    try:
        with _call("api_key_delete", creds, mutating=True):
            _account(creds).keys(key_sid).delete()
    except errors.TwilioNotFound:
        pass


def _application(a) -> Application:
    return Application(sid=a.sid, friendly_name=a.friendly_name or "", voice_url=a.voice_url or "",
                       voice_method=a.voice_method or "", status_callback=a.status_callback)


def application_create(*, creds: Credentials, friendly_name: str, voice_url: str, status_callback: str = "") -> Application:
    with _call("application_create", creds, mutating=True):
        kwargs = {"friendly_name": friendly_name, "voice_url": voice_url, "voice_method": "POST"}
        if status_callback:
            kwargs.update(status_callback=status_callback, status_callback_method="POST")
        return _application(_account(creds).applications.create(**kwargs))


def application_find(*, creds: Credentials, friendly_name: str) -> Application | None:
    with _call("application_find", creds):
        for a in _account(creds).applications.list(friendly_name=friendly_name, limit=20):
            if a.friendly_name == friendly_name:
                return _application(a)
    return None


def application_fetch(*, creds: Credentials, app_sid: str) -> Application | None:
    try:
        with _call("application_fetch", creds):
            return _application(_account(creds).applications(app_sid).fetch())
    except errors.TwilioNotFound:
        return None


def application_update(*, creds: Credentials, app_sid: str, voice_url: str, status_callback: str = "") -> Application:
    with _call("application_update", creds, mutating=True):
        kwargs = {"voice_url": voice_url, "voice_method": "POST"}
        if status_callback:
            kwargs.update(status_callback=status_callback, status_callback_method="POST")
        return _application(_account(creds).applications(app_sid).update(**kwargs))


# ---------------------------------------------------------------------------
# Phone numbers


def available_numbers_search(*, creds: Credentials, country: str, area_code: str, contains: str = "",
                             limit: int = 20) -> list[AvailableNumber]:
    with _call("available_numbers_search", creds):
        kwargs = {"area_code": int(area_code), "voice_enabled": True, "limit": limit}
        if contains:
            kwargs["contains"] = contains
        found = _account(creds).available_phone_numbers(country).local.list(**kwargs)
        return [
            AvailableNumber(phone_number=n.phone_number, friendly_name=n.friendly_name or "", locality=n.locality or "",
                            region=n.region or "", postal_code=n.postal_code or "", iso_country=n.iso_country or country,
                            capabilities=_capabilities(n.capabilities))
            for n in found
        ]


def _capabilities(raw) -> dict:
    raw = raw or {}
    return {k.lower(): bool(v) for k, v in dict(raw).items()}


def _incoming(n) -> IncomingNumber:
    return IncomingNumber(sid=n.sid, phone_number=n.phone_number, friendly_name=n.friendly_name or "",
                          voice_url=n.voice_url, voice_method=n.voice_method,
                          voice_application_sid=n.voice_application_sid, capabilities=_capabilities(n.capabilities))


def incoming_number_purchase(*, creds: Credentials, phone_number: str, voice_application_sid: str = "",
                             friendly_name: str = "") -> IncomingNumber:
    with _call("incoming_number_purchase", creds, mutating=True):
        kwargs = {"phone_number": phone_number}
        if voice_application_sid:
            kwargs["voice_application_sid"] = voice_application_sid
        if friendly_name:
            kwargs["friendly_name"] = friendly_name
        return _incoming(_account(creds).incoming_phone_numbers.create(**kwargs))


def incoming_numbers_list(*, creds: Credentials, phone_number: str = "", limit: int = 1000) -> list[IncomingNumber]:
    with _call("incoming_numbers_list", creds):
        kwargs = {"limit": limit}
        if phone_number:
            kwargs["phone_number"] = phone_number
        return [_incoming(n) for n in _account(creds).incoming_phone_numbers.list(**kwargs)]


def incoming_number_fetch(*, creds: Credentials, number_sid: str) -> IncomingNumber:
    with _call("incoming_number_fetch", creds):
        return _incoming(_account(creds).incoming_phone_numbers(number_sid).fetch())


def incoming_number_update(*, creds: Credentials, number_sid: str, voice_url: str | None = None,
                           voice_method: str | None = None, voice_application_sid: str | None = None) -> IncomingNumber:
    """Point a number's voice configuration at a URL (with method) or at a TwiML app (pass "" to clear one)."""
    kwargs = {}
    if voice_url is not None:
        kwargs["voice_url"] = voice_url
    if voice_method is not None:
        kwargs["voice_method"] = voice_method
    if voice_application_sid is not None:
        kwargs["voice_application_sid"] = voice_application_sid
    with _call("incoming_number_update", creds, mutating=True):
        return _incoming(_account(creds).incoming_phone_numbers(number_sid).update(**kwargs))


def incoming_number_release(*, creds: Credentials, number_sid: str) -> None:
    """Release a number. Already gone at Twilio counts as released."""
    try:
        with _call("incoming_number_release", creds, mutating=True):
            _account(creds).incoming_phone_numbers(number_sid).delete()
    except errors.TwilioNotFound:
        pass


# ---------------------------------------------------------------------------
# Caller IDs


def caller_id_validation_request(*, creds: Credentials, phone_number: str, friendly_name: str = "",
                                 status_callback: str = "") -> CallerIdValidation:
    with _call("caller_id_validation_request", creds, mutating=True):
        kwargs = {"phone_number": phone_number}
        if friendly_name:
            kwargs["friendly_name"] = friendly_name
        if status_callback:
            kwargs["status_callback"] = status_callback
        v = _account(creds).validation_requests.create(**kwargs)
        return CallerIdValidation(phone_number=v.phone_number, validation_code=str(v.validation_code),
                                  call_sid=v.call_sid)


def outgoing_caller_ids_list(*, creds: Credentials, phone_number: str = "") -> list[OutgoingCallerId]:
    with _call("outgoing_caller_ids_list", creds):
        kwargs = {"limit": 1000}
        if phone_number:
            kwargs["phone_number"] = phone_number
        return [OutgoingCallerId(sid=c.sid, phone_number=c.phone_number, friendly_name=c.friendly_name or "")
                for c in _account(creds).outgoing_caller_ids.list(**kwargs)]


def outgoing_caller_id_delete(*, creds: Credentials, caller_id_sid: str) -> None:
    try:
        with _call("outgoing_caller_id_delete", creds, mutating=True):
            _account(creds).outgoing_caller_ids(caller_id_sid).delete()
    except errors.TwilioNotFound:
        pass


# ---------------------------------------------------------------------------
# Live calls and recordings


def call_update(*, creds: Credentials, call_sid: str, twiml: str | None = None, status: str | None = None) -> CallInfo:
    """Redirect a live call to new TwiML, or end it with status="completed"."""
    kwargs = {}
    if twiml is not None:
        kwargs["twiml"] = twiml
    if status is not None:
        kwargs["status"] = status
    with _call("call_update", creds, mutating=True):
        c = _account(creds).calls(call_sid).update(**kwargs)
        return CallInfo(sid=c.sid, status=c.status)


def call_create(*, creds: Credentials, to: str, from_: str, url: str, status_callback: str,
                amd_status_callback: str = "", machine_detection: str = "DetectMessageEnd",
                timeout: int = 30) -> CallInfo:
    """Place an outbound call: Twilio requests `url` (POST) when it is answered, posts every status change to
    `status_callback`, and, with `amd_status_callback`, runs answering-machine detection in the background
    (`AsyncAmd`) and posts `AnsweredBy` there. Ambiguous failures (a timeout after sending) may have dialled."""
    kwargs = {
        "to": to, "from_": from_, "url": url, "method": "POST", "timeout": timeout,
        "status_callback": status_callback, "status_callback_method": "POST",
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
    }
    if amd_status_callback:
        kwargs.update(machine_detection=machine_detection, async_amd="true",
                      async_amd_status_callback=amd_status_callback, async_amd_status_callback_method="POST")
    with _call("call_create", creds, mutating=True):
        c = _account(creds).calls.create(**kwargs)
        return CallInfo(sid=c.sid, status=c.status)


# ---------------------------------------------------------------------------
# Conferences (warm transfers: calls.services.transfers)


def _participant(p) -> ParticipantInfo:
    return ParticipantInfo(call_sid=p.call_sid or "", conference_sid=p.conference_sid or "", status=p.status or "",
                           label=p.label or "", hold=bool(p.hold), muted=bool(p.muted))


def conference_participant_create(*, creds: Credentials, conference: str, from_: str, to: str, status_callback: str,
                                  label: str = "", timeout: int = 20, amd_status_callback: str = "",
                                  start_conference_on_enter: bool = True, end_conference_on_exit: bool = False,
                                  beep: bool = False, wait_url: str = "") -> ParticipantInfo:
    """Dial `to` into the conference `conference` (its SID, or its friendly name: Twilio creates it when it does not
    exist yet). Every call progress change goes to `status_callback`; with `amd_status_callback`, answering-machine
    detection runs on the leg and posts `AnsweredBy` there. Ambiguous failures (a timeout after sending) may have
    dialled."""
    kwargs = {
        "from_": from_, "to": to, "timeout": timeout, "beep": "true" if beep else "false",
        "start_conference_on_enter": start_conference_on_enter, "end_conference_on_exit": end_conference_on_exit,
        "status_callback": status_callback, "status_callback_method": "POST",
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
    }
    if label:
        kwargs["label"] = label
    if wait_url:
        kwargs.update(wait_url=wait_url, wait_method="POST")
    if amd_status_callback:
        kwargs.update(machine_detection="Enable", amd_status_callback=amd_status_callback,
                      amd_status_callback_method="POST")
    with _call("conference_participant_create", creds, mutating=True):
        return _participant(_account(creds).conferences(conference).participants.create(**kwargs))


def conference_participant_update(*, creds: Credentials, conference_sid: str, call_sid: str,
                                  hold: bool | None = None, hold_url: str = "", announce_url: str = "",
                                  muted: bool | None = None, coaching: bool | None = None,
                                  call_sid_to_coach: str = "") -> ParticipantInfo:
    """Hold / unhold (with `hold_url`'s music or message), mute, play `announce_url` to one participant, or make it
    a coach (`coaching` with `call_sid_to_coach`: heard only by that participant) or an ordinary one again."""
    kwargs = {}
    if coaching is not None:
        kwargs["coaching"] = coaching
        if coaching and call_sid_to_coach:
            kwargs["call_sid_to_coach"] = call_sid_to_coach
    if hold is not None:
        kwargs["hold"] = hold
        if hold_url:
            kwargs.update(hold_url=hold_url, hold_method="POST")
    if announce_url:
        kwargs.update(announce_url=announce_url, announce_method="POST")
    if muted is not None:
        kwargs["muted"] = muted
    with _call("conference_participant_update", creds, mutating=True):
        return _participant(_account(creds).conferences(conference_sid).participants(call_sid).update(**kwargs))


def conference_participant_delete(*, creds: Credentials, conference_sid: str, call_sid: str) -> None:
    """Remove a participant from the conference (its call hangs up)."""
    with _call("conference_participant_delete", creds, mutating=True):
        _account(creds).conferences(conference_sid).participants(call_sid).delete()


def call_recording_start(*, creds: Credentials, call_sid: str, status_callback: str, channels: str = "dual") -> Recording:
    with _call("call_recording_start", creds, mutating=True):
        r = _account(creds).calls(call_sid).recordings.create(
            recording_channels=channels,
            recording_status_callback=status_callback,
            recording_status_callback_method="POST",
            recording_status_callback_event=["in-progress", "completed", "absent"],
        )
        return Recording(sid=r.sid, call_sid=r.call_sid, status=r.status, channels=_int(r.channels),
                         duration=_int(r.duration))


def recording_delete(*, creds: Credentials, recording_sid: str) -> None:
    try:
        with _call("recording_delete", creds, mutating=True):
            _account(creds).recordings(recording_sid).delete()
    except errors.TwilioNotFound:
        pass


def recording_media(*, creds: Credentials, recording_sid: str, fmt: str = "mp3") -> requests.Response:
    """Stream a recording's audio (the caller proxies it to the browser; Twilio's media URL needs our credentials)."""
    url = rewrite_url(
        f"https://api.twilio.com/2010-04-01/Accounts/{creds.account_sid}/Recordings/{recording_sid}.{fmt}"
    )
    with _call("recording_media", creds):
        response = requests.get(url, auth=(creds.account_sid, creds.auth_token), stream=True,
                                timeout=(settings.TWILIO_CONNECT_TIMEOUT, settings.TWILIO_READ_TIMEOUT))
        if response.status_code == 404:
            raise errors.TwilioNotFound("The recording is not at Twilio any more.", status=404, code=errors.NOT_FOUND)
        if response.status_code in (401, 403):
            raise errors.TwilioAuthError("Twilio refused our credentials.", status=response.status_code)
        if response.status_code >= 500 or response.status_code == 429:
            raise errors.TwilioTransientError("Twilio could not serve the recording now.", status=response.status_code)
        return response


# ---------------------------------------------------------------------------
# Monitor


def alerts_list(*, creds: Credentials, since: datetime | None = None, limit: int = 20) -> list[Alert]:
    with _call("alerts_list", creds):
        kwargs = {"limit": limit}
        if since is not None:
            # The library formats the datetime as-is with a "Z": convert aware values to UTC first.
            kwargs["start_date"] = since.astimezone(timezone.utc) if since.tzinfo else since
        return [
            Alert(sid=a.sid, error_code=str(a.error_code or ""), log_level=a.log_level or "",
                  alert_text=a.alert_text or "", more_info=a.more_info or "", resource_sid=a.resource_sid,
                  date_created=a.date_created)
            for a in _client(creds).monitor.v1.alerts.list(**kwargs)
        ]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
