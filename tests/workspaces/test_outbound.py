"""The outbound guard refuses our own network: checked at connect time, after redirects, for names too."""
import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from workspaces import outbound

REFUSED = override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=True)


class _Handler(BaseHTTPRequestHandler):
    redirect_to = ""

    def do_GET(self):  # noqa: N802
        if self.path == "/redirect" and self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    def start(host="127.0.0.1", redirect_to=""):
        handler = type("H", (_Handler,), {"redirect_to": redirect_to})
        httpd = ThreadingHTTPServer((host, 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://{host}:{httpd.server_address[1]}"

    servers: list = []
    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.5", "172.16.0.1",
                                     "169.254.169.254", "0.0.0.0", "224.0.0.1", "100.64.0.1", "::ffff:127.0.0.1",
                                     "fd00:ec2::254", "fe80::1"])
def test_non_public_addresses_are_refused(address):
    with REFUSED:
        assert outbound.address_refusal(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "151.101.1.69"])
def test_public_addresses_are_allowed(address):
    with REFUSED:
        assert outbound.address_refusal(address) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.1/x",
                                 "http://169.254.169.254/latest/meta-data/"])
def test_requests_to_literal_private_addresses_are_refused_before_connecting(url):
    with REFUSED, outbound.client(timeout=2) as http, pytest.raises(outbound.OutboundRefused) as caught:
        http.get(url)
    assert "refused" in str(caught.value)


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(server, monkeypatch):
    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host == "api.example.test" else host, *a, **k))
    url = server().replace("127.0.0.1", "api.example.test")
    with REFUSED, outbound.client(timeout=2) as http, pytest.raises(outbound.OutboundRefused) as caught:
        http.get(url + "/")
    assert "loopback" in str(caught.value)


def test_a_redirect_to_loopback_is_refused(server, monkeypatch):
    target = server("127.0.0.1")
    first = server("127.0.0.2", redirect_to=target + "/")
    real = outbound.address_refusal
    # Pretend 127.0.0.2 is a public server that answers with a redirect to our loopback.
    monkeypatch.setattr(outbound, "address_refusal", lambda a: None if a == "127.0.0.2" else real(a))
    with REFUSED, outbound.client(timeout=2, follow_redirects=True) as http:
        with pytest.raises(outbound.OutboundRefused):
            http.get(first + "/redirect")


def test_redirects_are_followed_at_most_three_times(server):
    import httpx

    # A server on a fixed port redirecting to itself forever.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.RequestHandlerClass = type("H", (_Handler,), {"redirect_to": url + "/redirect"})
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with outbound.client(timeout=2, follow_redirects=True) as http, pytest.raises(httpx.TooManyRedirects):
            http.get(url + "/redirect")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_private_targets_are_allowed_when_the_setting_is_on(server):
    url = server()
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=True), outbound.client(timeout=2) as http:
        assert http.get(url + "/").json() == {"ok": True}


def test_the_async_client_applies_the_same_guard(server):
    url = server()

    async def fetch():
        async with outbound.async_client(timeout=2) as http:
            return await http.get(url + "/")

    with REFUSED, pytest.raises(outbound.OutboundRefused):
        asyncio.run(fetch())
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=True):
        assert asyncio.run(fetch()).json() == {"ok": True}


def test_the_static_check_names_the_problem():
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=False):
        assert outbound.url_refusal("http://api.example.com/x") == "The URL must start with https://."
        assert "refused" in outbound.url_refusal("https://169.254.169.254/")
        assert "this server" in outbound.url_refusal("https://localhost/")
        assert outbound.url_refusal("https://api.example.com/orders/{order}") is None


def test_host_check_resolves_names(monkeypatch):
    with REFUSED, pytest.raises(outbound.OutboundRefused):
        outbound.host_check("http://localhost./v1")
    with REFUSED, pytest.raises(outbound.OutboundRefused):
        outbound.host_check("http://127.0.0.1:8000/v1")


# ---------------------------------------------------------------------------
# IPv4 literals in the forms a resolver reads (octal, hex, short, one number): the addresses they mean


PRODUCTION = override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=False)


@pytest.mark.parametrize("host, address", [
    ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("0251.0376.0251.0376", "169.254.169.254"), ("10.1", "10.0.0.1"), ("0", "0.0.0.0"), ("1.2.3.4", "1.2.3.4"),
    ("010.010.010.010", "8.8.8.8"), ("api.example.com", None), ("1.2.3.4.5", None),
])
def test_numeric_hosts_are_read_as_the_resolver_reads_them(host, address):
    assert outbound.numeric_ipv4(host) == address


@pytest.mark.parametrize("host", ["0999.0.0.1", "1.2.3.256", "08.1", "0x1ffffffff"])
def test_numeric_hosts_that_are_no_address_are_errors(host):
    with pytest.raises(ValueError):
        outbound.numeric_ipv4(host)


@PRODUCTION
@pytest.mark.parametrize("url", ["https://0177.0.0.1:8221/x", "https://0x7f.1/", "https://127.1/",
                                 "https://2130706433/", "https://0251.0376.0251.0376/latest"])
def test_octal_hex_and_short_ipv4_literals_are_refused_as_what_they_mean(url):
    reason = outbound.url_refusal(url)
    assert reason and "are refused" in reason and ("loopback" in reason or "link-local" in reason)
    with pytest.raises(outbound.OutboundRefused):
        outbound.host_check(url)


@PRODUCTION
@pytest.mark.parametrize("url", ["https://0999.0.0.1/x", "https://1.2.3.256/", "https://010.010.010.010/"])
def test_odd_numeric_hosts_get_a_message_never_an_exception(url):
    assert outbound.url_refusal(url)
    with pytest.raises(outbound.OutboundRefused):
        outbound.host_check(url)


@PRODUCTION
def test_metadata_names_are_refused_without_resolving():
    assert "metadata" in outbound.url_refusal("https://metadata.google.internal/computeMetadata/v1/")


@PRODUCTION
def test_the_guarded_client_refuses_an_octal_loopback_url():
    async def fetch():
        async with outbound.async_client(timeout=2) as http:
            await http.get("https://0177.0.0.1:8221/x")

    with pytest.raises(outbound.OutboundRefused):
        asyncio.run(fetch())
