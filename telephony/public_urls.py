"""Every URL we give to Twilio or a browser: built from PUBLIC_BASE_URL, the app's public address.

Webhooks, status callbacks, `<Connect>` stream URLs, the TwiML app's voice URL and the links shown in Studio all come
from `absolute_url`, so the address Twilio calls is the one its signature check rebuilds
(`telephony.webhook_security.public_url`).
"""
import ipaddress
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


def public_base_problem(base_url: str | None = None) -> str:
    """Why Twilio could not reach `PUBLIC_BASE_URL` (localhost, a private address, plain http), or ''."""
    parts = urlsplit(base_url if base_url is not None else settings.PUBLIC_BASE_URL)
    host = (parts.hostname or "").lower()
    if not host:
        return "PUBLIC_BASE_URL is not set."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")) or "." not in host:
        return f"{host} is a local name: Twilio cannot reach it from the internet."
    if address is not None and not address.is_global:
        return f"{host} is a private address: Twilio cannot reach it from the internet."
    if parts.scheme != "https":
        return f"{parts.scheme}:// is not https: Twilio needs a public https address."
    return ""
