"""Troubleshoot Calls: the server-side checks, each passed/failed with its fix.

Reads only (Twilio REST through `twilio_gateway`, our own rows); nothing is changed.
The in-browser checks (microphone permission, WebRTC support) live in
static/dialer/troubleshoot.js.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from dialer.tokens import VoiceTokenUnavailable, voice_token_issue
from telephony import errors, twilio_gateway
from telephony.models import PhoneNumber
from telephony.selectors import connection_get

logger = logging.getLogger(__name__)

ALERT_WINDOW = timedelta(hours=24)

# What to do about the Monitor alerts that break browser calling most often.
ALERT_FIXES = {
    "11200": "Twilio could not fetch our voice webhook (HTTP retrieval failure). Make sure PUBLIC_BASE_URL is "
             "reachable from the internet over HTTPS and the server answered in time.",
    "11205": "Twilio could not connect to our webhook (HTTP connection failure): check PUBLIC_BASE_URL and TLS.",
    "12100": "Our webhook answered TwiML Twilio could not parse: check the server logs for the call.",
    "13214": "Dial: invalid callerId. Call from a number the workspace owns or has verified (Settings → Dialer "
             "→ Caller IDs).",
    "13223": "Dial: the dialed number is not valid. Check the number typed in the dialer.",
    "13227": "Dial: no international permission for that country. Enable it in the Twilio console's "
             "Voice geographic permissions.",
    "20101": "The voice token was refused: the API key may be deleted. Open Settings → Dialer and save the "
             "credentials again to create a new key.",
    "31205": "The voice token expired. Reload the page; the dialer refreshes tokens automatically.",
    "21210": "The caller ID is not verified or not owned by the account.",
}


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    passed: bool | None  # None: not run because an earlier check failed
    detail: str = ""
    fix: str = ""
    fix_url: str = ""

    @property
    def state(self) -> str:
        return {True: "passed", False: "failed", None: "skipped"}[self.passed]


@dataclass(frozen=True)
class AlertRow:
    error_code: str
    log_level: str
    text: str
    when: object
    fix: str
    more_info: str


@dataclass
class _Run:
    """What the checks share: the workspace's connection, its numbers, and whether its credentials work."""

    workspace: object
    user: object
    connection: object
    numbers: list
    creds_ok: bool = False
    alerts: list = field(default_factory=list)

    @property
    def settings_url(self) -> str:
        return reverse("dialer:settings")


def troubleshoot_run(*, workspace, user) -> tuple[list[Check], list[AlertRow]]:
    """Every check in order; each later one says "needs …" when an earlier one it relies on failed."""
    run = _Run(workspace=workspace, user=user, connection=connection_get(workspace=workspace),
               numbers=list(PhoneNumber.objects.filter(workspace=workspace).order_by("phone_number")
                            .annotate(studio_connector=F("connector_link__connector__name"))))
    checks = [check(run) for check in CHECKS]
    return checks, run.alerts


def check_credentials(run: _Run) -> Check:
    name, label, connection = "credentials", "Twilio credentials are valid", run.connection
    if connection is None or not connection.has_credentials:
        return Check(name, label, False, "No Twilio account is connected.",
                     "Go to Settings → Dialer and enter your Twilio credentials.", run.settings_url)
    try:
        account = twilio_gateway.account_fetch(creds=connection.credentials())
    except errors.TwilioAuthError as exc:
        return Check(name, label, False, exc.display(),
                     "Credentials are invalid or expired — re-enter them in Settings → Dialer.", run.settings_url)
    except errors.TwilioError as exc:
        return Check(name, label, False, exc.display(), "Twilio did not answer; run the checks again in a minute.", "")
    if account.status != "active":
        return Check(name, label, False, f"The Twilio account is {account.status}.",
                     "Reactivate the account in the Twilio console, then re-check.", "")
    run.creds_ok = True
    return Check(name, label, True, f"Account {account.sid} ({account.friendly_name or account.type}) is active.")


def check_numbers(run: _Run) -> Check:
    numbers = run.numbers
    return Check("numbers", "At least one phone number", bool(numbers),
                 f"{len(numbers)} number(s): {', '.join(n.phone_number for n in numbers[:5])}" if numbers
                 else "Credentials may be valid but no numbers are provisioned.",
                 "" if numbers else "Search for a number and provision it.",
                 "" if numbers else reverse("dialer:number_search"))


def check_twiml_app(run: _Run) -> Check:
    from telephony.selectors import outbound_voice_url

    name, label, connection = "twiml_app", "The TwiML app's voice URL is ours", run.connection
    if not run.creds_ok:
        return Check(name, label, None, "Needs valid credentials.")
    if not connection.twiml_app_sid:
        return Check(name, label, False, "The workspace has no TwiML app for the dialer yet.",
                     "Open Settings → Dialer and save the credentials again to create it.", run.settings_url)
    try:
        app = twilio_gateway.application_fetch(creds=connection.credentials(), app_sid=connection.twiml_app_sid)
    except errors.TwilioError as exc:
        return Check(name, label, False, exc.display(), "Run the checks again in a minute.", "")
    expected_url = outbound_voice_url(run.workspace)
    if app is None:
        return Check(name, label, False, f"TwiML app {connection.twiml_app_sid} no longer exists at Twilio.",
                     "Open Settings → Dialer and save the credentials again to re-create it.", run.settings_url)
    if app.voice_url.rstrip("/") != expected_url.rstrip("/"):
        return Check(name, label, False, f"It points at {app.voice_url or '(nothing)'} instead of {expected_url}.",
                     "Open Settings → Dialer and save the credentials again to repair it.", run.settings_url)
    return Check(name, label, True, f"{app.friendly_name or app.sid}: {app.voice_url}")


def check_number_voice(run: _Run) -> Check:
    name, label, connection = "number_voice", "Each number sends calls to the TwiML app", run.connection
    if not run.creds_ok or not run.numbers:
        return Check(name, label, None, "Needs valid credentials and at least one number.")
    try:
        remote = {n.phone_number: n for n in twilio_gateway.incoming_numbers_list(creds=connection.credentials())}
    except errors.TwilioError as exc:
        return Check(name, label, False, exc.display(), "Run the checks again in a minute.", "")
    wrong, studio = [], []
    for number in run.numbers:
        found = remote.get(number.phone_number)
        if number.studio_connector is not None:
            # Answered by a Studio agent (its phone connector points the number there on purpose).
            studio.append(f"{number.phone_number} answers with the Studio connector "
                          f"{number.studio_connector or '(unnamed)'}")
        elif found is None:
            wrong.append(f"{number.phone_number} is not on the Twilio account any more")
        elif not connection.twiml_app_sid or found.voice_application_sid != connection.twiml_app_sid:
            target = found.voice_application_sid or found.voice_url or "nothing"
            wrong.append(f"{number.phone_number} sends calls to {target}")
    note = f" ({'; '.join(studio)}.)" if studio else ""
    if wrong:
        return Check(name, label, False, "; ".join(wrong) + "." + note,
                     "On Phone numbers, click \"Ring the dialer\" on each of them (or, in the Twilio "
                     "console's Phone Numbers → Active numbers, set its voice configuration to the "
                     f"TwiML App {connection.twiml_app_sid}).", reverse("dialer:numbers"))
    if len(studio) == len(run.numbers):
        return Check(name, label, False, "No number rings the dialer: every number answers with a Studio agent"
                                         f"{note} Calls to the dialer cannot come in.",
                     "On Phone numbers, click \"Ring the dialer\" on one of them (it leaves its connector), or buy "
                     "another number for the dialer.", reverse("dialer:numbers"))
    return Check(name, label, True, f"{len(run.numbers) - len(studio)} dialer number(s) use TwiML app "
                                    f"{connection.twiml_app_sid}.{note}")


def check_token(run: _Run) -> Check:
    """Signed locally, and the API key still exists at Twilio."""
    name, label, connection = "token", "A voice token can be issued", run.connection
    if connection is None or not run.creds_ok:
        return Check(name, label, None, "Needs valid credentials.")
    try:
        voice_token_issue(connection=connection, user=run.user, mark_presence=False)
        key_ok = twilio_gateway.api_key_exists(creds=connection.credentials(), key_sid=connection.api_key_sid)
    except VoiceTokenUnavailable as exc:
        return Check(name, label, False, exc.message, "Open Settings → Dialer and save the credentials again.",
                     run.settings_url)
    except errors.TwilioError as exc:
        return Check(name, label, False, exc.display(), "Run the checks again in a minute.", "")
    if not key_ok:
        return Check(name, label, False, f"API key {connection.api_key_sid} was deleted at Twilio: tokens would be "
                                         "refused (error 20101).",
                     "Open Settings → Dialer and save the credentials again to create a new key.", run.settings_url)
    return Check(name, label, True, f"Signed with API key {connection.api_key_sid} for TwiML app "
                                    f"{connection.twiml_app_sid}.")


def check_alerts(run: _Run) -> Check:
    """Twilio Monitor's alerts of the last 24 hours, each with its fix (kept on the run for the page)."""
    name, label = "alerts", "No recent Twilio alerts"
    if not run.creds_ok:
        return Check(name, label, None, "Needs valid credentials.")
    try:
        found = twilio_gateway.alerts_list(creds=run.connection.credentials(),
                                           since=timezone.now() - ALERT_WINDOW, limit=20)
    except errors.TwilioError as exc:
        return Check(name, label, False, exc.display(), "Run the checks again in a minute.", "")
    run.alerts = [AlertRow(error_code=a.error_code, log_level=a.log_level, text=_alert_text(a.alert_text),
                           when=a.date_created, fix=ALERT_FIXES.get(a.error_code, ""), more_info=a.more_info)
                  for a in found]
    codes = sorted({a.error_code for a in run.alerts})
    return Check(name, label, not run.alerts,
                 f"{len(run.alerts)} alert(s) in the last 24 hours: {', '.join(codes)}." if run.alerts
                 else "No alerts in the last 24 hours.",
                 "See each alert's fix below." if run.alerts else "")


def check_signalling(run: _Run) -> Check:
    """Browser calls need Twilio's voice signalling (wss://voice-js.roaming.twilio.com); against the sandbox, its own
    (TWILIO_SANDBOX_SIGNALLING, the Device's chunderw)."""
    from dialer.tokens import sandbox_signalling
    from telephony.services import sandbox_active

    name, label = "signalling", "The browser can reach Twilio's voice signalling"
    if signalling := sandbox_signalling():
        return Check(name, label, True,
                     f"This install runs against the local Twilio sandbox, which answers the Voice SDK's signalling "
                     f"at wss://{signalling}/signal: calls go to the sandbox's people (see docs/twilio-sandbox.md).",
                     f"If the panel stays on \"Connecting…\", open https://{signalling}/ once and accept the "
                     f"sandbox's self-signed certificate.")
    if sandbox_active():
        return Check(name, label, False,
                     "This install runs against the local Twilio sandbox without its Voice SDK signalling "
                     "(TWILIO_SANDBOX_SIGNALLING is not set): the browser cannot reach Twilio's voice signalling "
                     "offline, so the dialer cannot place or receive calls (the panel shows ConnectionError 31005).",
                     "Run with bin/run --sandbox (it starts the sandbox's signalling and sets "
                     "TWILIO_SANDBOX_SIGNALLING), use a number's \"Simulate a call\" on Phone numbers, or run with a "
                     "real Twilio account (see the README: Connecting a real Twilio account to a local or "
                     "self-hosted install).",
                     reverse("dialer:numbers"))
    return Check(name, label, True, "Real Twilio: the browser connects to its signalling when the dialer starts; "
                                    "the panel shows an error if it cannot.")


CHECKS = [check_credentials, check_numbers, check_twiml_app, check_number_voice, check_token, check_alerts,
          check_signalling]


def _alert_text(raw: str) -> str:
    """Monitor's alert_text is a query string (`Msg=...&url=...`); show its message."""
    from urllib.parse import parse_qs

    if "=" in (raw or "") and "&" in raw or (raw or "").startswith("Msg="):
        parsed = parse_qs(raw)
        for key in ("Msg", "msg", "message"):
            if parsed.get(key):
                return parsed[key][0]
    return raw or ""
