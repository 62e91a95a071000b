"""Shared helpers for the browser-dialer tests (tokens, webhooks, call log, Troubleshoot Calls)."""
import secrets
from urllib.parse import urlencode

from django.conf import settings
from twilio.request_validator import RequestValidator

from telephony.models import CallerId, TwilioConnection
from telephony.selectors import phone_system_status_invalidate
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory


def ready_workspace(workspace, *, numbers=("+15125550100",), verified=(), local_presence=False) -> TwilioConnection:
    """A connected workspace with an API key, a TwiML app, numbers (as caller IDs) and verified caller IDs."""
    connection = TwilioConnectionFactory(
        workspace=workspace,
        api_key_sid="SK" + secrets.token_hex(16),
        api_key_secret=secrets.token_hex(16),
        twiml_app_sid="AP" + secrets.token_hex(16),
        local_presence=local_presence,
    )
    for i, number in enumerate(numbers):
        pn = PhoneNumberFactory(workspace=workspace, phone_number=number, is_primary=(i == 0))
        CallerId.objects.create(workspace=workspace, phone_number=number, kind=CallerId.Kind.PROVISIONED,
                                phone_number_ref=pn, is_default=(i == 0), country="US")
    for number in verified:
        from django.utils import timezone

        CallerId.objects.create(workspace=workspace, phone_number=number, kind=CallerId.Kind.VERIFIED,
                                verified_at=timezone.now(), country="US")
    phone_system_status_invalidate(workspace_id=workspace.pk)
    return connection


def public_url(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def signed_post(client, path: str, params: dict, auth_token: str, *, signature: str | None = None):
    """POST form params to a webhook with Twilio's signature over PUBLIC_BASE_URL + path."""
    if signature is None:
        signature = RequestValidator(auth_token).compute_signature(public_url(path), params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(path, data=urlencode(params, doseq=True),
                       content_type="application/x-www-form-urlencoded", **headers)


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)
