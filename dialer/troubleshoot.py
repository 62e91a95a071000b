"""Troubleshoot Calls: the server-side checks, each passed/failed with its fix.

Reads only (Twilio REST through `twilio_gateway`, our own rows); nothing is changed.
The in-browser checks (microphone permission, WebRTC support) live in
static/dialer/troubleshoot.js.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
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


def troubleshoot_run(*, workspace, user) -> tuple[list[Check], list[AlertRow]]:
    from telephony.selectors import outbound_voice_url

    settings_url = reverse("dialer:settings")
    checks: list[Check] = []
    alerts: list[AlertRow] = []
    connection = connection_get(workspace=workspace)

    # 1. Credentials
    creds_ok = False
    if connection is None or not connection.has_credentials:
        checks.append(Check("credentials", "Twilio credentials are valid", False,
                            "No Twilio account is connected.",
                            "Go to Settings → Dialer and enter your Twilio credentials.", settings_url))
    else:
        try:
            account = twilio_gateway.account_fetch(creds=connection.credentials())
        except errors.TwilioAuthError as exc:
            checks.append(Check("credentials", "Twilio credentials are valid", False, exc.display(),
                                "Credentials are invalid or expired — re-enter them in Settings → Dialer.",
                                settings_url))
        except errors.TwilioError as exc:
            checks.append(Check("credentials", "Twilio credentials are valid", False, exc.display(),
                                "Twilio did not answer; run the checks again in a minute.", ""))
        else:
            if account.status != "active":
                checks.append(Check("credentials", "Twilio credentials are valid", False,
                                    f"The Twilio account is {account.status}.",
                                    "Reactivate the account in the Twilio console, then re-check.", ""))
            else:
                creds_ok = True
                checks.append(Check("credentials", "Twilio credentials are valid", True,
                                    f"Account {account.sid} ({account.friendly_name or account.type}) is active."))

    # 2. At least one number
    numbers = list(PhoneNumber.objects.filter(workspace=workspace).order_by("phone_number")
                   .annotate(studio_connector=F("connector_link__connector__name")))
    checks.append(Check("numbers", "At least one phone number", bool(numbers),
                        f"{len(numbers)} number(s): {', '.join(n.phone_number for n in numbers[:5])}" if numbers
                        else "Credentials may be valid but no numbers are provisioned.",
                        "" if numbers else "Search for a number and provision it.",
                        "" if numbers else reverse("dialer:number_search")))

    # 3. TwiML app voice URL
    expected_url = outbound_voice_url(workspace)
    if not creds_ok:
        checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", None, "Needs valid credentials."))
    elif not connection.twiml_app_sid:
        checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", False,
                            "The workspace has no TwiML app for the dialer yet.",
                            "Open Settings → Dialer and save the credentials again to create it.", settings_url))
    else:
        try:
            app = twilio_gateway.application_fetch(creds=connection.credentials(), app_sid=connection.twiml_app_sid)
        except errors.TwilioError as exc:
            checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", False, exc.display(),
                                "Run the checks again in a minute.", ""))
        else:
            if app is None:
                checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", False,
                                    f"TwiML app {connection.twiml_app_sid} no longer exists at Twilio.",
                                    "Open Settings → Dialer and save the credentials again to re-create it.",
                                    settings_url))
            elif app.voice_url.rstrip("/") != expected_url.rstrip("/"):
                checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", False,
                                    f"It points at {app.voice_url or '(nothing)'} instead of {expected_url}.",
                                    "Open Settings → Dialer and save the credentials again to repair it.",
                                    settings_url))
            else:
                checks.append(Check("twiml_app", "The TwiML app's voice URL is ours", True,
                                    f"{app.friendly_name or app.sid}: {app.voice_url}"))

    # 4. Each number's voice configuration
    if not creds_ok or not numbers:
        checks.append(Check("number_voice", "Each number sends calls to the TwiML app", None,
                            "Needs valid credentials and at least one number."))
    else:
        try:
            remote = {n.phone_number: n for n in twilio_gateway.incoming_numbers_list(creds=connection.credentials())}
        except errors.TwilioError as exc:
            checks.append(Check("number_voice", "Each number sends calls to the TwiML app", False, exc.display(),
                                "Run the checks again in a minute.", ""))
        else:
            wrong, studio = [], []
            for number in numbers:
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
                checks.append(Check("number_voice", "Each number sends calls to the TwiML app", False,
                                    "; ".join(wrong) + "." + note,
                                    "On Phone numbers, click \"Ring the dialer\" on each of them (or, in the Twilio "
                                    "console's Phone Numbers → Active numbers, set its voice configuration to the "
                                    f"TwiML App {connection.twiml_app_sid}).", reverse("dialer:numbers")))
            else:
                checks.append(Check("number_voice", "Each number sends calls to the TwiML app", True,
                                    f"{len(numbers) - len(studio)} dialer number(s) use TwiML app "
                                    f"{connection.twiml_app_sid}.{note}"))

    # 5. A token can be issued (signed locally, and the API key still exists at Twilio)
    if connection is None or not creds_ok:
        checks.append(Check("token", "A voice token can be issued", None, "Needs valid credentials."))
    else:
        try:
            voice_token_issue(connection=connection, user=user, mark_presence=False)
            key_ok = twilio_gateway.api_key_exists(creds=connection.credentials(), key_sid=connection.api_key_sid)
        except VoiceTokenUnavailable as exc:
            checks.append(Check("token", "A voice token can be issued", False, exc.message,
                                "Open Settings → Dialer and save the credentials again.", settings_url))
        except errors.TwilioError as exc:
            checks.append(Check("token", "A voice token can be issued", False, exc.display(),
                                "Run the checks again in a minute.", ""))
        else:
            if key_ok:
                checks.append(Check("token", "A voice token can be issued", True,
                                    f"Signed with API key {connection.api_key_sid} for TwiML app "
                                    f"{connection.twiml_app_sid}."))
            else:
                checks.append(Check("token", "A voice token can be issued", False,
                                    f"API key {connection.api_key_sid} was deleted at Twilio: tokens would be "
                                    "refused (error 20101).",
                                    "Open Settings → Dialer and save the credentials again to create a new key.",
                                    settings_url))

    # 6. Recent Monitor alerts
    if not creds_ok:
        checks.append(Check("alerts", "No recent Twilio alerts", None, "Needs valid credentials."))
    else:
        try:
            found = twilio_gateway.alerts_list(creds=connection.credentials(),
                                               since=timezone.now() - ALERT_WINDOW, limit=20)
        except errors.TwilioError as exc:
            checks.append(Check("alerts", "No recent Twilio alerts", False, exc.display(),
                                "Run the checks again in a minute.", ""))
        else:
            alerts = [AlertRow(error_code=a.error_code, log_level=a.log_level, text=_alert_text(a.alert_text),
                               when=a.date_created, fix=ALERT_FIXES.get(a.error_code, ""), more_info=a.more_info)
                      for a in found]
            codes = sorted({a.error_code for a in alerts})
            checks.append(Check("alerts", "No recent Twilio alerts", not alerts,
                                f"{len(alerts)} alert(s) in the last 24 hours: {', '.join(codes)}." if alerts
                                else "No alerts in the last 24 hours.",
                                "See each alert's fix below." if alerts else ""))
    return checks, alerts


def _alert_text(raw: str) -> str:
    """Monitor's alert_text is a query string (`Msg=...&url=...`); show its message."""
    from urllib.parse import parse_qs

    if "=" in (raw or "") and "&" in raw or (raw or "").startswith("Msg="):
        parsed = parse_qs(raw)
        for key in ("Msg", "msg", "message"):
            if parsed.get(key):
                return parsed[key][0]
    return raw or ""
