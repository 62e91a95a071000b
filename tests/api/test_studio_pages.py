"""Studio's pages for calling out: "Call a number", API keys (shown once), the do-not-call list and the limit;
the calls list and call page show the direction, the number called, who answered and the outcome."""
import re

import pytest
from django.test import Client

from api.models import ApiKey, key_hash
from calls.models import CallSession
from telephony.models import DoNotCallNumber, OutboundCallPolicy
from tests.api.helpers import CALLER_ID, outbound_setup
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEntry, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def o(twilio_sandbox):
    twilio_sandbox.dial_outbound = False
    return outbound_setup(sandbox=twilio_sandbox)


@pytest.fixture
def admin(o):
    user = UserFactory(username="carol")
    MembershipFactory(workspace=o.workspace, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def test_call_a_number_places_the_call_and_opens_its_page(o, admin, twilio_sandbox):
    page = admin.get("/studio/calls/place/")
    assert page.status_code == 200 and CALLER_ID.encode() in page.content

    response = admin.post("/studio/calls/place/", {
        "agent": o.setup.version.agent_id, "environment": o.setup.environment.pk, "version_mode": "draft",
        "to": "(512) 555-0123", "from_number": CALLER_ID, "variables": "first_name=Jane\nreason=your order"})

    session = CallSession.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/studio/calls/{session.pk}/"
    assert session.variables == {"first_name": "Jane", "reason": "your order"} and session.to_number == "+15125550123"
    assert session.placed_by == "carol"
    detail = admin.get(response["Location"]).content.decode()
    assert 'data-testid="called-number">+15125550123' in detail and "Outbound" in detail
    assert "first_name=Jane" in detail


def test_call_a_number_refuses_a_do_not_call_number_with_a_clear_message(o, admin, twilio_sandbox):
    DoNotCallNumber.objects.create(workspace=o.workspace, phone_number="+15125550123")
    response = admin.post("/studio/calls/place/", {
        "agent": o.setup.version.agent_id, "environment": o.setup.environment.pk, "version_mode": "draft",
        "to": "+15125550123"})
    assert response.status_code == 200 and b"do-not-call list" in response.content
    assert not twilio_sandbox.requests_to(r"/Calls\.json$", "POST")


def test_the_calls_list_shows_direction_outcome_and_answered_by(o, admin, django_assert_max_num_queries):
    CallSession.objects.create(call_sid="CA" + "1" * 32, workspace=o.workspace, direction="outbound-api",
                               to_number="+15125550166", from_number=CALLER_ID, status="completed",
                               answered_by="machine_end_beep", outcome="voicemail_left",
                               agent_version=o.setup.version, environment=o.setup.environment)
    with django_assert_max_num_queries(20):
        html = admin.get("/studio/calls/").content.decode()
    assert "Outbound" in html and "Voicemail left · machine_end_beep" in html
    csv = admin.get("/studio/calls/export.csv").content.decode()
    assert "direction,answered_by,outcome" in csv.splitlines()[0]
    assert "outbound-api,machine_end_beep,voicemail_left" in csv


def test_an_api_key_is_shown_once_and_revoked(o, admin):
    response = admin.post("/settings/api-keys/", {"name": "Booking system"})
    secret = re.search(r'data-testid="new-key-secret">([^<]+)<', response.content.decode()).group(1)
    key = ApiKey.objects.get(name="Booking system")
    assert key.hashed_key == key_hash(secret) and response["Cache-Control"] == "no-store"
    assert secret not in admin.get("/settings/api-keys/").content.decode()
    assert Client().get("/api/v1/calls", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

    admin.post(f"/settings/api-keys/{key.pk}/revoke/")

    assert Client().get("/api/v1/calls", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert AuditEntry.objects.filter(action=AuditEntry.Action.API_KEY_REVOKED).exists()


def test_members_cannot_manage_api_keys(o):
    user = UserFactory(username="dave")
    MembershipFactory(workspace=o.workspace, user=user, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(user)
    assert client.get("/settings/api-keys/").status_code in (302, 403, 404)


def test_the_do_not_call_page_adds_removes_and_sets_the_limit(o, admin):
    admin.post("/settings/dialer/do-not-call/", {"form": "dnc", "phone_number": "(512) 555-0123", "reason": "x"})
    entry = DoNotCallNumber.objects.get()
    assert entry.phone_number == "+15125550123"
    bad = admin.post("/settings/dialer/do-not-call/", {"form": "dnc", "phone_number": "nope"})
    assert bad.status_code == 200 and b"valid phone number" in bad.content
    admin.post("/settings/dialer/do-not-call/", {"form": "limit", "max_concurrent_agent_calls": "3"})
    assert OutboundCallPolicy.objects.get().max_concurrent_agent_calls == 3
    admin.post(f"/settings/dialer/do-not-call/{entry.pk}/remove/")
    assert not DoNotCallNumber.objects.exists()
