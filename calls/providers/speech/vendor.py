"""What every vendor stage shares: the key check, the base URL check, error mapping, PCM alignment.

- `require_key`: a missing key is a SpeechConfigError naming the secret (never a value).
- `checked_base_url`: a base URL from the settings goes through `workspaces.outbound.host_check` before an SDK
  opens it (the vendor's public URL is ours and is not checked); HTTP SDKs also get `http_client()`, the
  outbound guard's httpx client, so every connection they make is checked when it is made.
- `status_error`: 400/401/403/404/422 (bad key, unknown voice or model) are permanent, anything else transient.
- `aligned`: vendors stream bytes in arbitrary sizes; PCM16 consumers want whole samples.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from calls.providers.speech.base import SpeechConfigError, SpeechError, SpeechSettings
from workspaces import outbound

PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})


def require_key(settings: SpeechSettings, secret: str) -> str:
    if not settings.api_key:
        raise SpeechConfigError(f"The environment has no {secret} secret.")
    return settings.api_key


async def checked_base_url(settings: SpeechSettings, default: str, vendor: str) -> str:
    """The base URL to hand to the SDK, without a trailing slash."""
    url = (settings.base_url or "").strip().rstrip("/")
    if not url:
        return default
    try:
        await asyncio.to_thread(outbound.host_check, url)
    except outbound.OutboundRefused as exc:
        raise SpeechConfigError(f"The {vendor} base URL is refused: {exc}") from None
    return url


def ws_url(http_url: str) -> str:
    """http(s)://host/path -> ws(s)://host/path (vendors serve their websockets on the API host)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


def http_client(timeout: float) -> httpx.AsyncClient:
    return outbound.async_client(timeout=httpx.Timeout(timeout, connect=5.0))


def status_error(vendor: str, status: int | None, what: str = "") -> SpeechError:
    permanent = status in PERMANENT_STATUSES
    reason = {401: "the API key was refused", 403: "the API key may not use this",
              404: "unknown voice or model", 400: "the request was refused",
              422: "the request was refused"}.get(status or 0, f"HTTP {status}" if status else "no answer")
    text = f"{vendor} {what} failed: {reason}" if what else f"{vendor} failed: {reason}"
    return SpeechError(f"{text} (HTTP {status})." if status and permanent else f"{text}.", permanent=permanent)


def connection_error(vendor: str, exc: BaseException) -> SpeechError:
    return SpeechError(f"{vendor} could not be reached ({type(exc).__name__}).", permanent=False)


async def aligned(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-chunk a byte stream so every chunk holds whole 16-bit samples (a trailing odd byte waits)."""
    carry = b""
    try:
        async for chunk in chunks:
            if carry:
                chunk = carry + chunk
            cut = len(chunk) & ~1
            carry = chunk[cut:]
            if cut:
                yield chunk[:cut]
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
