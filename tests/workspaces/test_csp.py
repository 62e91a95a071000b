"""Content-Security-Policy (django-csp): the header on every page, and no inline script or style in our
templates (the policy allows neither)."""
import re
from pathlib import Path

import pytest
from django.test import Client

from tests.workspaces.csp_pages import main_pages, studio_rows

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


def test_every_main_page_sends_the_policy(workspace, admin_user, twilio_sandbox):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    pages = main_pages(workspace, *studio_rows(workspace))
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], url
        assert directives["style-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


def test_logged_out_pages_errors_and_json_send_the_policy(client):
    for url, status in [("/login/", 200), ("/admin/login/", 200), ("/no-such-page/", 404), ("/healthz", 200),
                        ("/", 302)]:
        response = client.get(url)
        assert response.status_code == status, url
        policy(response)


def test_connect_src_allows_our_websockets_and_the_voice_sdk(client, settings):
    directives = policy(client.get("/login/"))
    assert "'self'" in directives["connect-src"]
    assert "wss://calls.example.test" in directives["connect-src"]  # PUBLIC_BASE_URL's host
    assert {"wss://*.twilio.com", "https://*.twilio.com"} <= set(directives["connect-src"])
    assert "'self'" in directives["media-src"]  # recordings are streamed through our own views
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]


def test_a_plain_http_base_url_allows_ws_too():
    from config.settings.base import content_security_policy

    connect = content_security_policy("http://localhost:8000")["DIRECTIVES"]["connect-src"]
    assert "ws://localhost:8000" in connect and "wss://localhost:8000" in connect
    connect = content_security_policy("https://calls.example.com")["DIRECTIVES"]["connect-src"]
    assert "wss://calls.example.com" in connect and not any(s.startswith("ws://") for s in connect)


INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\sstyle\s*=|<style\b|\son[a-z]+\s*=\s*[\"']|javascript:", re.I)


def test_no_template_has_inline_script_or_style():
    templates = [p for p in ROOT.glob("**/templates/**/*.html") if "node_modules" not in p.parts
                 and ".venv" not in p.parts]
    assert len(templates) > 20
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in templates for m in INLINE.finditer(p.read_text())]
    assert found == []
