"""The chat-model interface every vendor module implements, its one error, and the vendor table.

    chat = chat_model(ctx, "anthropic", model="")   # the key is required (ProviderConfigError names it)
    await chat.open()                               # checks the base URL (outbound guard), builds the client
    async for item in chat.stream(messages, tools=tools):
        str  -> a text delta, as it arrives
        dict -> a completed tool call {"id", "name", "arguments" (a JSON string)}, after the text
    await chat.close()

`messages` and `tools` are in the OpenAI chat shape (`calls.providers.conversation` keeps the history in it);
a vendor module translates. Failures raise `ChatError`: `permanent` (bad key, unknown model, refused request:
not retried) or transient (timeout, connection, 5xx, overload mid-stream).
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from calls.providers.lookup import load_class

# vendor -> "module:Class" (imported when a call uses it; names match agents.catalogue.ChatVendor)
VENDORS = {
    "openai": "calls.providers.chat.openai:OpenAIChat",
    "anthropic": "calls.providers.chat.anthropic:AnthropicChat",
}
# vendor -> the prefix of its environment settings: <PREFIX>_API_KEY, _BASE_URL, _CHAT_MODEL, _TIMEOUT
SETTINGS_PREFIX = {"openai": "OPENAI", "anthropic": "ANTHROPIC"}
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})


class ChatError(Exception):
    """The model failed. `reason`: "http_error", "timeout" or "connection"; never a secret in the message."""

    def __init__(self, message: str, *, reason: str, permanent: bool = False, status: int | None = None,
                 error: str = ""):
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent
        self.status = status
        self.error = error

    def detail(self) -> dict:
        """What a ProviderFailed event carries (no secrets)."""
        if self.status:
            return {"status": self.status}
        return {"error": self.error} if self.error else {}


class ChatModel:
    """One vendor's model. Subclasses set `vendor` and implement `open`, `stream`, `close`."""

    vendor = ""

    def __init__(self, *, api_key: str = "", model: str = "", base_url: str = "", timeout: float = 15.0):
        self.model = model
        self.base_url = (base_url or "").strip().rstrip("/")
        self.timeout = timeout

    def configure(self, setting) -> None:
        """Vendor-specific settings (`setting(name, default)` reads the call's environment); default: none."""

    async def open(self) -> None:
        """Check the base URL and build the client (idempotent; `stream` opens when needed)."""

    def stream(self, messages: list[dict], *, tools: list[dict] | None = None) -> AsyncIterator[str | dict]:
        raise NotImplementedError

    async def close(self) -> None:
        """Free the client (safe to call twice)."""


def chat_class(vendor: str) -> type[ChatModel]:
    from calls.providers.base import ProviderConfigError

    return load_class(VENDORS, vendor, "chat model vendor", ProviderConfigError)


def chat_model(ctx, vendor: str = "", *, model: str = "", timeout: float | None = None) -> ChatModel:
    """The version's chat model from the call's environment (key, base URL, default model, timeout)."""
    vendor = vendor or "openai"
    cls = chat_class(vendor)
    prefix = SETTINGS_PREFIX.get(vendor, vendor.upper())
    if timeout is None:
        try:
            timeout = float(ctx.setting(f"{prefix}_TIMEOUT", "15") or 15)
        except ValueError:
            timeout = 15.0
    chat = cls(api_key=ctx.setting(f"{prefix}_API_KEY"), model=model or ctx.setting(f"{prefix}_CHAT_MODEL"),
               base_url=ctx.setting(f"{prefix}_BASE_URL"), timeout=timeout)
    chat.configure(ctx.setting)
    return chat


async def checked_base_url(url: str, label: str) -> None:
    """The outbound guard's check of a base URL from the environment, before a client is built for it."""
    import asyncio

    from calls.providers.base import ProviderConfigError
    from workspaces import outbound

    try:
        await asyncio.to_thread(outbound.host_check, url)
    except outbound.OutboundRefused as exc:
        raise ProviderConfigError(f"The {label} base URL is refused: {exc}") from None
