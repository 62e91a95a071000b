"""Issue 22 point 1: the second factor guards every session view, the `/v1/` ones too (the voice token, caller
IDs, number normalisation); only the views that check Twilio's signature themselves are exempt, each by its
own mark, and the code-step page carries no dialer (no script, no voice token)."""
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import TwilioConnectionFactory
from tests.workspaces.test_two_factor import enrol, password_login

pytestmark = pytest.mark.django_db


def _routes(patterns=None, prefix=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _concrete(route: str) -> str:
    route = route.replace("<str:identifier>", "x").lstrip("^").rstrip("$")
    return "/" + re.sub(r"<int:\w+>", "1", route)


@pytest.fixture
def pending_client(workspace, member_user):
    """bob has a TOTP device and has typed only his password."""
    client = Client()
    password_login(client, "bob")
    enrol(client)
    client.post(reverse("logout"))
    password_login(client, "bob")
    return client


def test_the_voice_token_and_the_other_v1_session_views_ask_for_the_code_first(workspace, pending_client):
    TwilioConnectionFactory(workspace=workspace)
    for url in ("/v1/voice/token", "/v1/voice/caller-ids", "/v1/voice/normalize?number=5125550100"):
        response = pending_client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("two_factor_verify")), url


def test_every_v1_route_is_either_a_signed_webhook_or_asks_for_the_code(workspace, pending_client):
    routes = [(route, view) for route, view in _routes() if route.startswith("v1/")]
    signed = [route for route, view in routes if getattr(view, "signed_webhook", False)]
    unsigned = [route for route, view in routes if not getattr(view, "signed_webhook", False)]
    assert "v1/voice/token" in unsigned and "v1/agents/<str:identifier>/twilio-config" in signed
    # the dialer's 8 voice webhooks (the 8th: a coached call's conference status); a connector's 4 (answer,
    # relay handover, dial result, recording status), the 4 of a warm transfer (participant status, its AMD, the
    # brief's answer, the conference result) and a rep's leg of a transfer to the dialer reps: 9; a call an agent
    # places: its own 4 (answer, status, AMD, recording status) and the same 7 handover callbacks as a connector's
    assert len(signed) == 8 + 9 + 4 + 7
    for route in unsigned:
        response = pending_client.get(_concrete(route))
        assert response.status_code == 302 and response.url.startswith(reverse("two_factor_verify")), route
    for route in signed:
        # Reaches the view's own signature check (no signature: 403 or, for an unknown id, 404), not the code step.
        response = pending_client.post(_concrete(route), {})
        assert response.status_code in (403, 404), route


def test_a_workspace_that_requires_two_factor_guards_the_voice_token_too(workspace, member_user):
    workspace.require_two_factor = True
    workspace.save()
    TwilioConnectionFactory(workspace=workspace)
    client = Client()
    password_login(client, "bob")
    response = client.get("/v1/voice/token")
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))


def test_the_code_step_page_loads_no_dialer_and_no_voice_token(workspace, pending_client):
    TwilioConnectionFactory(workspace=workspace)
    html = pending_client.get(reverse("two_factor_verify")).content.decode()
    assert 'data-testid="two-factor-verify"' in html
    assert "dialer/dialer.js" not in html and "twilio-voice" not in html
    assert reverse("dialer:token") not in html
    assert 'class="sidebar"' not in html
