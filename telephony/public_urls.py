"""Every URL we give to Twilio or a browser: built from PUBLIC_BASE_URL, the app's public address.

Webhooks, status callbacks, `<Connect>` stream URLs, the TwiML app's voice URL and the links shown in Studio all come
from `absolute_url`, so the address Twilio calls is the one its signature check rebuilds
(`telephony.webhook_security.public_url`).
"""
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse


def absolute_url(path_or_name: str, *args, websocket: bool = False) -> str:
    """`PUBLIC_BASE_URL` + a path ("/v1/…", with any query) or the path of a URL name reversed with `args`.

    `websocket=True` gives the ws:// (for an http base) or wss:// address of the same host.
    """
    path = path_or_name if path_or_name.startswith("/") else reverse(path_or_name, args=args)
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    scheme = parts.scheme
    if websocket:
        scheme = "ws" if parts.scheme == "http" else "wss"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"
