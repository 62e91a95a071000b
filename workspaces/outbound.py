"""The outbound guard: every request we send to a URL a user typed goes through here.

Agent actions, OAuth2 token URLs, event webhooks and vendor base URLs are typed by users, so a request to
one of them must not reach our own network: loopback, private, link-local (cloud metadata lives there),
multicast, unspecified and other non-global addresses are refused, unless
``settings.OUTBOUND_ALLOW_PRIVATE_TARGETS`` is on (local development and tests).

The check runs when the connection is made, on the addresses the name resolved to, and the connection
goes to the address that was checked: a name that resolves to loopback, a redirect to a private address
or a DNS answer that changes between check and connect (rebinding) are all refused. Use

    with outbound.client(timeout=5) as http:          # Celery tasks, sync code
        http.get(url)
    async with outbound.async_client(timeout=5) as http:  # the live call's own task
        await http.get(url)

``url_refusal(url)`` is the static check forms use (scheme and literal addresses, no DNS);
``host_check(url)`` resolves and checks a URL handed to a vendor SDK that opens its own connections.
Proxies from the environment are ignored (``trust_env=False``): a proxy would connect for us, unchecked.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from urllib.parse import urlsplit

import anyio
import certifi
import httpcore
import httpx
from django.conf import settings

MAX_REDIRECTS = 3


class OutboundRefused(httpx.TransportError):
    """A request to a refused target (message in plain words; the URL's credentials are never in it).

    A subclass of ``httpx.TransportError`` so callers that handle network errors handle this too."""


def _allow_private() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_TARGETS", False))


def address_refusal(address: str) -> str | None:
    """Why we refuse to connect to this IP address, or None when it is a public address."""
    if _allow_private():
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "it is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "it is a loopback address"
    if ip.is_link_local:
        return "it is a link-local address (cloud metadata services live there)"
    if ip.is_multicast:
        return "it is a multicast address"
    if ip.is_unspecified:
        return "it is an unspecified address"
    if ip.is_private:
        return "it is a private address"
    if not ip.is_global:
        return "it is not a public address"
    return None


# A host made only of numbers (decimal, 0-prefixed octal, 0x hex), one to four dot-separated parts: an IPv4 address
# as inet_aton and browsers read it (0177.0.0.1, 0x7f.1, 127.1 and 2130706433 all mean 127.0.0.1).
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
# Cloud metadata services by name (their addresses are link-local, refused anyway once resolved).
METADATA_HOSTS = ("metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal")


class _NotAnAddress(ValueError):
    pass


def numeric_ipv4(host: str) -> str | None:
    """The dotted-quad IPv4 address a numeric host stands for (what the resolver would connect to), or None
    when `host` is not numeric. Raises ValueError for a numeric host that is no address (0999.1, 1.2.3.256)."""
    if not _NUMERIC_HOST.match(host or ""):
        return None
    values = []
    for part in host.rstrip(".").split("."):
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            if not set(part) <= set("01234567"):
                raise _NotAnAddress(host)
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        raise _NotAnAddress(host)
    number = sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last
    return str(ipaddress.IPv4Address(number))


def url_refusal(url: str) -> str | None:
    """The static check (no DNS): scheme, host present, literal addresses (in any form the resolver reads, e.g.
    octal 0177.0.0.1), metadata names. None when the URL may be used."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "Enter a valid URL."
    allowed = ("https", "http") if getattr(settings, "OUTBOUND_ALLOW_HTTP", False) else ("https",)
    if parts.scheme not in allowed:
        return "The URL must start with https://." if allowed == ("https",) else "The URL must start with https:// or http://."
    if not host:
        return "The URL has no host."
    name = host.lower().rstrip(".")
    if not _allow_private():
        if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
            return f"{host} is this server: requests to it are refused."
        if name in METADATA_HOSTS:
            return f"Requests to {host} are refused: it is a cloud metadata service."
    try:
        address = numeric_ipv4(name)
    except ValueError:
        return f"{host} is not a valid address: enter a valid URL."
    if address is not None and address != name:
        reason = address_refusal(address)
        if reason:
            return f"Requests to {host} ({address}) are refused: {reason}."
        return f"Write the address {host} as {address}."  # HTTP clients refuse the other forms
    try:
        httpx.URL(url)  # what the client will parse: no 500 later for a URL it refuses
    except (httpx.InvalidURL, ValueError, TypeError):
        return "Enter a valid URL."
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = address_refusal(host)
    return f"Requests to {host} are refused: {reason}." if reason else None


def _checked_addresses(host: str, infos) -> list[str]:
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundRefused(f"{host} did not resolve to any address.")
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            shown = host if host == address else f"{host} ({address})"
            raise OutboundRefused(f"Requests to {shown} are refused: {reason}.")
    return addresses


def resolve_checked(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, every one of them allowed; else OutboundRefused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"{host} could not be resolved ({exc.strerror}).") from None
    return _checked_addresses(host, infos)


def host_check(url: str) -> None:
    """For a URL a vendor SDK will open itself: the static check, then resolve its host and check every
    address. Raises OutboundRefused."""
    reason = url_refusal(url)
    if reason:
        raise OutboundRefused(reason)
    parts = urlsplit(url)
    resolve_checked(parts.hostname, parts.port or (443 if parts.scheme in ("https", "wss") else 80))


class _GuardedBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error: Exception | None = None
        for address in resolve_checked(host, port):
            try:
                return super().connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except httpcore.ConnectError as exc:  # try the next address, as a browser would
                error = exc
        raise error  # type: ignore[misc]


async def _connect_checked(host, port, connect, connect_error):
    """Resolve `host`, check every address, then `connect(address)` to each in turn until one answers."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"{host} could not be resolved ({exc.strerror}).") from None
    error: Exception | None = None
    for address in _checked_addresses(host, infos):
        try:
            return await connect(address)
        except connect_error as exc:  # try the next address, as a browser would
            error = exc
    raise error  # type: ignore[misc]


class _AsyncGuardedBackend(httpcore.AnyIOBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        async def connect(address):
            return await super(_AsyncGuardedBackend, self).connect_tcp(
                address, port, timeout=timeout, local_address=local_address, socket_options=socket_options)
        return await _connect_checked(host, port, connect, httpcore.ConnectError)


def _ssl_context(verify) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context(cafile=certifi.where())
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded network backend (TLS still verifies the URL's host name)."""

    def __init__(self, *, verify=True, limits: httpx.Limits = httpx.Limits(max_connections=10)):
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(verify), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, verify=True, limits: httpx.Limits = httpx.Limits(max_connections=10)):
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(verify), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_AsyncGuardedBackend(),
        )


def _refuse_bad_urls(request: httpx.Request) -> None:
    reason = url_refusal(str(request.url))
    if reason:
        raise OutboundRefused(reason, request=request)


async def _async_refuse_bad_urls(request: httpx.Request) -> None:
    _refuse_bad_urls(request)


def _refused_url(url) -> OutboundRefused:
    reason = url_refusal(str(url)) or "Enter a valid URL."
    return OutboundRefused(f"The URL cannot be used: {reason}" if not reason.startswith("Requests") else reason)


class _GuardedClient(httpx.Client):
    def build_request(self, method, url, **kwargs):
        try:
            return super().build_request(method, url, **kwargs)
        except httpx.InvalidURL:  # e.g. an octal IPv4 host: refused as what it means, never an unhandled error
            raise _refused_url(url) from None


class _AsyncGuardedClient(httpx.AsyncClient):
    def build_request(self, method, url, **kwargs):
        try:
            return super().build_request(method, url, **kwargs)
        except httpx.InvalidURL:
            raise _refused_url(url) from None


def client(*, timeout: float, follow_redirects: bool = False, verify=True, **kwargs) -> httpx.Client:
    """A sync httpx client whose every connection (redirects included, at most 3) is checked."""
    return _GuardedClient(
        transport=GuardedTransport(verify=verify), timeout=timeout, follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS, trust_env=False, event_hooks={"request": [_refuse_bad_urls]}, **kwargs,
    )


def async_client(*, timeout: float, follow_redirects: bool = False, verify=True, **kwargs) -> httpx.AsyncClient:
    """The async twin of `client` for the live call's own task."""
    return _AsyncGuardedClient(
        transport=AsyncGuardedTransport(verify=verify), timeout=timeout, follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS, trust_env=False, event_hooks={"request": [_async_refuse_bad_urls]}, **kwargs,
    )


def _httpx2_guarded(sync: bool):
    """httpx2's transport (the Anthropic SDK's HTTP library) on a guarded network backend, as GuardedTransport."""
    import httpcore2
    import httpx2

    def _connect_addresses(host, port, infos, connect):
        error: Exception | None = None
        for address in _checked_addresses(host, infos):
            try:
                return connect(address)
            except httpcore2.ConnectError as exc:  # try the next address
                error = exc
        raise error  # type: ignore[misc]

    if sync:
        class _Backend(httpcore2.SyncBackend):
            def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
                try:
                    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except socket.gaierror as exc:
                    raise OutboundRefused(f"{host} could not be resolved ({exc.strerror}).") from None
                return _connect_addresses(host, port, infos, lambda address: super(_Backend, self).connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options))

        transport = httpx2.HTTPTransport(trust_env=False)
        transport._pool = httpcore2.ConnectionPool(ssl_context=_ssl_context(True), max_connections=10,
                                                   network_backend=_Backend())
        return transport

    class _AsyncBackend(httpcore2.AnyIOBackend):
        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            async def connect(address):
                return await super(_AsyncBackend, self).connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options)
            return await _connect_checked(host, port, connect, httpcore2.ConnectError)

    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=_ssl_context(True), max_connections=10,
                                                    network_backend=_AsyncBackend())
    return transport


def client_httpx2(*, timeout: float, **kwargs):
    """An ``httpx2.Client`` (the Anthropic SDK's HTTP library) whose every connection is checked when it is made
    and goes to the address that was checked, as ``client``'s: the SDK resolves no name itself."""
    import httpx2

    return httpx2.Client(transport=_httpx2_guarded(True), timeout=timeout, trust_env=False, follow_redirects=False,
                         event_hooks={"request": [_refuse_bad_urls]}, **kwargs)


def async_client_httpx2(*, timeout: float, **kwargs):
    """The async twin of ``client_httpx2`` (the live call's Anthropic chat model)."""
    import httpx2

    return httpx2.AsyncClient(transport=_httpx2_guarded(False), timeout=timeout, trust_env=False,
                              follow_redirects=False, event_hooks={"request": [_async_refuse_bad_urls]}, **kwargs)


def websocket_target(url: str) -> dict:
    """For a websocket client (`websockets.connect(url, **websocket_target(url))`): the static check, then the
    name resolved and checked once, and the connection pinned to the checked address (TLS still verifies the
    URL's host name; proxies from the environment ignored). Raises OutboundRefused."""
    reason = url_refusal(url.replace("wss://", "https://", 1).replace("ws://", "http://", 1))
    if reason:
        raise OutboundRefused(reason)
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    port = parts.port or (443 if secure else 80)
    address = resolve_checked(parts.hostname, port)[0]
    target = {"host": address, "port": port, "proxy": None}
    if secure:
        target["server_hostname"] = parts.hostname
    return target
